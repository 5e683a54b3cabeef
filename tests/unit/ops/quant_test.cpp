// Row quantize/dequantize: hand-built blocks with known values (layout facts), fp16/bf16
// conversions, and quantize->dequantize round trips within per-format error bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/tensor_type.h"
#include "ops/fp16.h"
#include "ops/ops.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::random_floats;

TEST(Fp16, KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x0001), 5.9604645e-8f);
  EXPECT_EQ(f16_to_f32(0x3555), 0.33325195f);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3F80);  // tie rounds to even
}

TEST(Fp16, RoundTripAllHalves) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  // NaN payloads
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(Quant, Q4_0KnownBlockLayout) {
  // d = 1; byte j holds element j (low nibble) and element j+16 (high nibble).
  uint8_t blk[18];
  const uint16_t one = 0x3C00;
  std::memcpy(blk, &one, 2);
  for (int j = 0; j < 16; ++j) blk[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(TensorType::Q4_0, blk, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j - 8);
    EXPECT_EQ(y[j + 16], 7 - j);
  }
}

TEST(Quant, Q4_1KnownBlockLayout) {
  uint8_t blk[20];
  const uint16_t half = 0x3800, m = 0xC000;  // d = 0.5, m = -2
  std::memcpy(blk, &half, 2);
  std::memcpy(blk + 2, &m, 2);
  for (int j = 0; j < 16; ++j) blk[4 + j] = static_cast<uint8_t>(j | (3 << 4));
  float y[32];
  dequantize_row(TensorType::Q4_1, blk, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 2);
    EXPECT_EQ(y[j + 16], 1.5f - 2);
  }
}

TEST(Quant, RejectsBadLength) {
  std::vector<float> x(40);
  std::vector<uint8_t> buf(100);
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x.data(), buf.data(), 40), InvalidArgument);
  EXPECT_THROW(dequantize_row(TensorType::Q4_K, buf.data(), x.data(), 32), InvalidArgument);
  EXPECT_THROW(dequantize_row(TensorType::Q2_K, buf.data(), x.data(), 256), InvalidArgument);
}

// Worst-case absolute error of one element, derived from each format's step size.
// blk = the elements sharing the element's scale (block, or K-quant sub-block), sup = the
// super-block (same as blk for non-K formats).
double bound(TensorType t, const float* blk, int nb, const float* sup, int ns, float x) {
  auto amax = [](const float* p, int n) {
    double a = 0;
    for (int i = 0; i < n; ++i) a = std::max(a, double(std::fabs(p[i])));
    return a;
  };
  auto range = [](const float* p, int n, bool clamp0) {
    double lo = clamp0 ? 0 : p[0], hi = clamp0 ? 0 : p[0];
    for (int i = 0; i < n; ++i) lo = std::min(lo, double(p[i])), hi = std::max(hi, double(p[i]));
    return std::make_pair(lo, hi);
  };
  const double h = 1.0 / 1024;  // fp16 relative precision (2^-10, with margin)
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return std::fabs(x) / 2048 + 1e-7;
    case TensorType::BF16: return std::fabs(x) / 256 + 1e-30;
    case TensorType::Q8_0: return amax(blk, nb) * (0.5 / 127 + h);
    // Symmetric 4/5-bit: the extreme opposite the signed maximum is clipped by one step.
    case TensorType::Q4_0: return amax(blk, nb) * (1.0 / 8 + h);
    case TensorType::Q5_0: return amax(blk, nb) * (1.0 / 16 + h);
    case TensorType::Q4_1: case TensorType::Q5_1: {
      auto [lo, hi] = range(blk, nb, false);
      const double L = t == TensorType::Q4_1 ? 15 : 31;
      return (hi - lo) / L * 0.5 + (hi - lo) * h + std::fabs(lo) * h;
    }
    case TensorType::Q4_K: case TensorType::Q5_K: {
      // step <= s_j + smax/63 (6-bit scales rounded up), offset error <= mmax/126.
      const double L = t == TensorType::Q4_K ? 15 : 31;
      auto [lo, hi] = range(blk, nb, true);
      double smax = 0, mmax = 0;
      for (int j = 0; j < ns / 32; ++j) {
        auto [l2, h2] = range(sup + 32 * j, 32, true);
        smax = std::max(smax, (h2 - l2) / L);
        mmax = std::max(mmax, -l2);
      }
      return 0.5 * (hi - lo) / L + smax / 63 + mmax / 63 + (smax * L + mmax) * h;
    }
    case TensorType::Q6_K: {
      double smax = 0;
      for (int j = 0; j < ns / 16; ++j) smax = std::max(smax, amax(sup + 16 * j, 16) / 31);
      return 0.5 * amax(blk, nb) / 31 + smax / 127 + amax(blk, nb) * h;
    }
    default: return 0;
  }
}

class RoundTrip : public ::testing::TestWithParam<TensorType> {};

TEST_P(RoundTrip, WithinFormatBound) {
  const TensorType t = GetParam();
  const auto tt = io::traits(t);
  const int be = static_cast<int>(tt.block_elems);
  const int sub = t == TensorType::Q6_K ? 16 : (be == 256 ? 32 : be);
  const int64_t n = std::max(be, 256) * 6;
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    // Mix scales across blocks, and one all-positive and one all-zero block, to hit the
    // min-clamp and zero-scale paths.
    std::vector<float> x = random_floats(n, seed, -1.f, 1.f);
    for (int64_t i = 0; i < n; ++i) x[i] *= 0.01f + static_cast<float>((i / 256) % 3);
    for (int i = 0; i < 256; ++i) x[256 + i] = std::fabs(x[256 + i]) + 0.5f;
    for (int i = 0; i < 256; ++i) x[512 + i] = 0;
    std::vector<uint8_t> q(io::row_bytes(t, n));
    std::vector<float> y(n);
    quantize_row(t, x.data(), q.data(), n);
    dequantize_row(t, q.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b0 = i / sub * sub, s0 = i / be * be;
      const double tol = bound(t, &x[b0], sub, &x[s0], be, x[i]) * 1.001 + 1e-7;
      ASSERT_LE(std::fabs(double(y[i]) - x[i]), tol) << io::type_name(t) << " i=" << i << " x=" << x[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16,
                                           TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1,
                                           TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K,
                                           TensorType::Q5_K, TensorType::Q6_K),
                         [](const auto& info) { return std::string(io::type_name(info.param)); });

}  // namespace
}  // namespace edgellm::ops
