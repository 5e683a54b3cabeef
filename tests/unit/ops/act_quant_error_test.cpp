// The int8 activation error of every quantized-weight matmul is bounded per 32 elements:
// activations are quantized with one scale per 32 (Q8_A for the legacy formats, Q8_KA for the
// K-quants), so element i carries an error of at most amax(its 32-block)/254 and
//   |y - ref| <= sum_i |w_i| * amax_32(x around i) / 254   (+ fp32 accumulation slack).
// The activations have outliers (as FFN-down inputs do), so a kernel that used one scale per
// 256 (the K-quants' old Q8_KA) breaks this bound by a wide margin. Reference: double-precision
// dot of the dequantized weights; every ISA, sizes with block tails, misaligned pointers,
// 1-4 token tiles and a batch with parallel quantization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
using testing::Misaligned;
using testing::random_floats;

double bound32(const float* w, const float* x, int64_t n) {
  double err = 0, sabs = 0;
  for (int64_t b = 0; b < n; b += 32) {
    double amax = 0;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, double(std::fabs(x[i])));
    for (int64_t i = b; i < b + 32; ++i) err += std::fabs(w[i]) * amax / 254, sabs += std::fabs(double(w[i]) * x[i]);
  }
  return err * 1.001 + 1e-5 * sabs + 1e-6;
}

class ActQuantError : public ::testing::TestWithParam<TensorType> {};

TEST_P(ActQuantError, WithinPer32Bound) {
  IsaGuard guard;
  const TensorType t = GetParam();
  const int64_t base = io::traits(t).block_elems == 256 ? 256 : 32;
  uint32_t seed = 300;
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa)) << isa;
    for (const int64_t n_in : {base, base * 3, base * 9})
      for (const int64_t n_tok : {1, 2, 3, 4, 5, 19}) {
        ++seed;
        const int64_t n_out = 13;
        const size_t rb = io::row_bytes(t, n_in);
        std::vector<float> wf = random_floats(static_cast<size_t>(n_in * n_out), seed);
        Misaligned wbuf(rb * n_out, seed % 61);
        for (int64_t o = 0; o < n_out; ++o) quantize_row(t, &wf[o * n_in], wbuf.data() + o * rb, n_in);
        for (int64_t o = 0; o < n_out; ++o) dequantize_row(t, wbuf.data() + o * rb, &wf[o * n_in], n_in);
        std::vector<float> x = random_floats(static_cast<size_t>(n_in * n_tok), seed + 1);
        // One large outlier per 256 elements (at varying places): with a per-256 scale the
        // other 224+ values would keep only a few int8 levels.
        for (size_t i = (seed * 37) % 256; i < x.size(); i += 256) x[i] = (i & 1 ? 60.f : -60.f);
        Misaligned xbuf(sizeof(float) * x.size(), 4 * (seed % 8));
        std::memcpy(xbuf.data(), x.data(), x.size() * sizeof(float));
        std::vector<float> y(static_cast<size_t>(n_out * n_tok));
        ThreadPool pool(1 + static_cast<int>(seed % 2));
        matmul({t, wbuf.data(), n_in, n_out, rb}, xbuf.floats(), n_tok, y.data(), pool);
        for (int64_t k = 0; k < n_tok; ++k)
          for (int64_t o = 0; o < n_out; ++o) {
            const float* w = &wf[o * n_in];
            const float* xr = &x[k * n_in];
            double ref = 0;
            for (int64_t i = 0; i < n_in; ++i) ref += double(w[i]) * xr[i];
            ASSERT_NEAR(y[k * n_out + o], ref, bound32(w, xr, n_in))
                << io::type_name(t) << " isa=" << isa << " n_in=" << n_in << " tokens=" << n_tok << " t=" << k
                << " o=" << o;
          }
      }
  }
}

INSTANTIATE_TEST_SUITE_P(QuantTypes, ActQuantError,
                         ::testing::Values(TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                                           TensorType::Q5_1, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K),
                         [](const auto& info) { return std::string(io::type_name(info.param)); });

}  // namespace
}  // namespace edgellm::ops
