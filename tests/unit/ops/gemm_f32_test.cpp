// matmul_float_tiled (float weights x many tokens in register tiles over widened panels)
// against a double-precision reference on every ISA: F32, F16 and BF16 weights, row lengths
// and output counts that leave partial vectors, strips and panels, token counts that leave
// partial register tiles and blocks, misaligned and padded buffers, one and two threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/gemm_f32.h"
#include "ops/ops.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

void check(TensorType type, int64_t n_in, int64_t n_out, int64_t n_tok, size_t pad, size_t off, ThreadPool& pool,
           const std::string& isa) {
  const size_t rb = io::row_bytes(type, n_in), stride = rb + pad;
  const auto wf = random_floats(n_in * n_out, static_cast<uint32_t>(n_in * 131 + n_out * 7 + n_tok));
  Misaligned wb(stride * n_out, off);
  std::vector<float> deq(n_in * n_out);
  for (int64_t o = 0; o < n_out; ++o) {
    quantize_row(type, &wf[o * n_in], wb.data() + o * stride, n_in);
    dequantize_row(type, wb.data() + o * stride, &deq[o * n_in], n_in);
  }
  const auto x = random_floats(n_in * n_tok, static_cast<uint32_t>(n_tok * 17 + 3), -2.f, 2.f);
  Misaligned xb(x.size() * 4, off + 4), yb(static_cast<size_t>(n_tok * n_out) * 4, 8);
  std::memcpy(xb.data(), x.data(), x.size() * 4);
  const MatrixView W{type, wb.data(), n_in, n_out, stride, Layout::Rows};
  matmul_float_tiled(W, xb.floats(), n_tok, yb.floats(), pool);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double want = 0, mag = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        want += double(deq[o * n_in + i]) * x[t * n_in + i];
        mag += std::abs(double(deq[o * n_in + i]) * x[t * n_in + i]);
      }
      ASSERT_NEAR(yb.floats()[t * n_out + o], want, 1e-6 * mag + 1e-6)
          << isa << " " << io::type_name(type) << " n_in " << n_in << " n_out " << n_out << " tokens " << n_tok
          << " t " << t << " o " << o << " threads " << pool.size();
    }
}

TEST(GemmF32, MatchesReferenceEveryIsa) {
  ThreadPool one(1), two(2);
  for_each_isa([&](const std::string& isa) {
    for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16})
      for (int64_t n_in : {1, 7, 33, 64, 240})
        for (int64_t n_out : {1, 5, 63, 64, 65, 130})
          for (int64_t n_tok : {1, 5, 7, 100, 200}) {
            check(type, n_in, n_out, n_tok, 6, 2, two, isa);
            if (n_tok == 7) check(type, n_in, n_out, n_tok, 0, 0, one, isa);
          }
  });
}

TEST(GemmF32, EqualsMatmulOnAnEncoderShape) {
  ThreadPool two(2);
  for_each_isa([&](const std::string& isa) { check(TensorType::F16, 384, 192, 301, 0, 0, two, isa); });
}

TEST(GemmF32, RejectsBadInput) {
  ThreadPool one(1);
  std::vector<uint8_t> w(34 * 4);
  std::vector<float> x(32), y(4);
  EXPECT_THROW(matmul_float_tiled({TensorType::Q8_0, w.data(), 32, 4, 34, Layout::Rows}, x.data(), 1, y.data(), one),
               InvalidArgument);
  EXPECT_THROW(matmul_float_tiled({TensorType::F32, w.data(), 8, 4, 16, Layout::Rows}, x.data(), 1, y.data(), one),
               InvalidArgument);
}

}  // namespace
}  // namespace edgellm::ops
