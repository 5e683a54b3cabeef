// matmul_q8_tiled (Q8_0 weights x many int8 tokens, VNNI register tiles on AVX-512) against a
// double-precision reference over the weights dequantized by the reference code, on every ISA
// (where the kernel is absent it is ops::matmul, checked the same way): Rows and X4 layouts,
// row counts that leave partial 16- and 32-row panels, token counts that leave partial 6-token
// tiles and blocks, misaligned inputs and outputs, one and two threads. The bound is the int8
// activation error: sum over blocks of sum |w| * amax(block) / 254, plus fp32 slack.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/gemm_q8.h"
#include "ops/ops.h"
#include "ops/quant_ref.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

void check(int64_t n_in, int64_t n_out, int64_t n_tok, bool x4, size_t off, ThreadPool& pool, const std::string& isa) {
  const size_t rb = io::row_bytes(TensorType::Q8_0, n_in);
  const auto wf = random_floats(n_in * n_out, static_cast<uint32_t>(n_in * 131 + n_out * 7 + n_tok));
  std::vector<uint8_t> rows(rb * n_out);
  std::vector<float> deq(n_in * n_out);
  for (int64_t o = 0; o < n_out; ++o) {
    quantize_row(TensorType::Q8_0, &wf[o * n_in], rows.data() + o * rb, n_in);
    ref::dequantize(TensorType::Q8_0, rows.data() + o * rb, &deq[o * n_in], n_in);
  }
  MatrixView W{TensorType::Q8_0, rows.data(), n_in, n_out, rb, Layout::Rows};
  std::vector<uint8_t> packed;
  if (x4) W = repack_x4(W, packed);
  auto x = random_floats(n_in * n_tok, static_cast<uint32_t>(n_tok * 17 + 3), -2.f, 2.f);
  for (int64_t i = 0; i < n_in; i += 37) x[i] = 0;  // some zeros, and an all-zero block below
  std::fill(x.begin(), x.begin() + 32, 0.f);
  Misaligned xb(x.size() * 4, off), yb(static_cast<size_t>(n_tok * n_out) * 4, off + 4);
  std::memcpy(xb.data(), x.data(), x.size() * 4);
  matmul_q8_tiled(W, xb.floats(), n_tok, yb.floats(), pool);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double want = 0, bound = 0, mag = 0;
      for (int64_t b = 0; b < n_in / 32; ++b) {
        double amax = 0, wabs = 0;
        for (int64_t k = b * 32; k < b * 32 + 32; ++k) {
          const double w = deq[o * n_in + k], xv = x[t * n_in + k];
          want += w * xv;
          mag += std::abs(w * xv);
          wabs += std::abs(w);
          amax = std::max(amax, std::abs(xv));
        }
        bound += wabs * amax / 254;
      }
      ASSERT_NEAR(yb.floats()[t * n_out + o], want, bound * 1.01 + 1e-5 * mag + 1e-5)
          << isa << " n_in " << n_in << " n_out " << n_out << " tokens " << n_tok << " x4 " << x4 << " t " << t
          << " o " << o << " threads " << pool.size();
    }
}

TEST(GemmQ8, MatchesReferenceEveryIsa) {
  ThreadPool one(1), two(2);
  for_each_isa([&](const std::string& isa) {
    for (int64_t n_in : {32, 64, 384, 1536})
      for (int64_t n_out : {1, 5, 16, 31, 32, 33, 70})
        for (int64_t n_tok : {16, 17, 23, 100, 200})
          for (bool x4 : {false, true}) {
            check(n_in, n_out, n_tok, x4, 4, two, isa);
            if (n_tok == 23) check(n_in, n_out, n_tok, x4, 0, one, isa);
          }
  });
}

// Few tokens, other types and bad shapes take ops::matmul (same results as calling it).
TEST(GemmQ8, FallsBackToMatmul) {
  ThreadPool two(2);
  for_each_isa([&](const std::string& isa) {
    check(64, 40, 3, false, 0, two, isa);
    const auto wf = random_floats(64 * 8, 5);
    std::vector<uint8_t> w(io::row_bytes(TensorType::Q4_0, 64) * 8);
    for (int o = 0; o < 8; ++o) quantize_row(TensorType::Q4_0, &wf[o * 64], w.data() + o * (w.size() / 8), 64);
    const MatrixView W{TensorType::Q4_0, w.data(), 64, 8, w.size() / 8, Layout::Rows};
    const auto x = random_floats(64 * 20, 6);
    std::vector<float> a(8 * 20), b(8 * 20);
    matmul_q8_tiled(W, x.data(), 20, a.data(), two);
    matmul(W, x.data(), 20, b.data(), two);
    EXPECT_EQ(a, b) << isa;
  });
}

}  // namespace
}  // namespace edgellm::ops
