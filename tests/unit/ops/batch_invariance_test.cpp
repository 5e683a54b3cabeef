// A token's matmul result must not depend on the batch it is computed in: the same weight row
// and the same activation row give bit-identical outputs whether the token is alone (decode),
// in a 4-token tile, a partial tile, or a prefill batch whose activation quantization runs in
// parallel. Otherwise greedy output changes with batching, continuous batching and prefix
// reuse. Checked on every ISA, every weight type, with several thread counts.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/tensor_type.h"
#include "ops/ops.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::IsaGuard;
using testing::random_floats;

class BatchInvariance : public ::testing::TestWithParam<TensorType> {};

TEST_P(BatchInvariance, EachTokenEqualsItsSingleTokenMatmul) {
  IsaGuard guard;
  const TensorType t = GetParam();
  const int64_t base = io::traits(t).block_elems == 256 ? 256 : 32;
  // Odd block counts (vector and unroll tails) and a model-sized row; 37 rows is not a
  // multiple of any row tile. K-quants also get a row of 41 super-blocks, whose 2-8 tokens'
  // activations outgrow L1 so the VNNI tiles take the row in blocks (GemvK8VnniBlocked; 41 leaves
  // a partial last block for every token count).
  std::vector<int64_t> lengths{base, base * 3, base == 256 ? int64_t{768} : int64_t{576}};
  if (base == 256) lengths.push_back(41 * 256);
  for (const int64_t n_in : lengths) {
    const int64_t n_out = 37;
    const size_t rb = io::row_bytes(t, n_in);
    std::vector<uint8_t> w(rb * n_out);
    const auto wf = random_floats(static_cast<size_t>(n_in * n_out), 11);
    for (int64_t o = 0; o < n_out; ++o) quantize_row(t, &wf[o * n_in], w.data() + o * rb, n_in);
    MatrixView W{t, w.data(), n_in, n_out, rb};
    std::vector<uint8_t> packed;
    // X4/K8 formats as the model runs them where the native kernels exist.
    if (repack_preferred(t)) W = repack(W, packed);
    // 40 tokens: >= 16 takes the parallel activation quantization; activations with a few
    // outliers, as in real FFN inputs, so per-block scales differ widely.
    const int64_t kMaxTok = 40;
    auto x = random_floats(static_cast<size_t>(n_in * kMaxTok), 12, -1.f, 1.f);
    for (size_t i = 0; i < x.size(); i += 97) x[i] *= 20.f;
    // K8 on AVX-512: one token runs a 256-bit one-group tile, batches the paired 512-bit tiles,
    // with VNNI (dpbusd) and without (maddubs): both kinds must agree bitwise.
    // X16 (Q5_0/Q8_0 with VNNI at load): the VNNI tile, or unpacked rows with VNNI turned off.
    const bool k8 = t == TensorType::Q4_K || t == TensorType::Q6_K, x16 = W.layout == Layout::X16;
    for (const bool vnni : {true, false}) {
      if (!vnni && !k8 && !x16) continue;
      set_vnni_allowed(vnni);
      for (const std::string& isa : available_isas()) {
        ASSERT_TRUE(force_isa(isa)) << isa;
        for (int threads : {1, 2, 3}) {
          ThreadPool pool(threads);
          std::vector<float> single(static_cast<size_t>(n_out * kMaxTok));
          for (int64_t k = 0; k < kMaxTok; ++k) matmul(W, &x[k * n_in], 1, &single[k * n_out], pool);
          for (const int64_t n_tok : {2, 3, 4, 5, 7, 8, 9, 10, 12, 15, 16, 17, 40}) {
            // Start the batch at several offsets so each token sits at every tile position.
            for (const int64_t first : {int64_t{0}, int64_t{1}, int64_t{3}}) {
              if (first + n_tok > kMaxTok) continue;
              std::vector<float> y(static_cast<size_t>(n_out * n_tok));
              matmul(W, &x[first * n_in], n_tok, y.data(), pool);
              for (int64_t k = 0; k < n_tok; ++k)
                for (int64_t o = 0; o < n_out; ++o) {
                  const float a = y[k * n_out + o], b = single[(first + k) * n_out + o];
                  ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0)
                      << io::type_name(t) << " isa=" << isa << " vnni=" << vnni << " threads=" << threads
                      << " n_in=" << n_in                      << " batch of " << n_tok << " from " << first << ": token " << k << " row " << o
                      << " batched " << a << " vs single " << b;
                }
            }
          }
        }
      }
    }
  }
  set_vnni_allowed(true);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, BatchInvariance, ::testing::ValuesIn(testing::kAllWeightTypes),
                         [](const auto& info) { return std::string(io::type_name(info.param)); });

}  // namespace
}  // namespace edgellm::ops
