// GELU in its erf form (Whisper, BERT), one copy per Highway target (included via
// foreach_target after kernels_elementwise-inl.h, whose MapBinary it uses). erf by Abramowitz &
// Stegun 7.1.26 (|error| < 1.5e-7, the rounding of fp32 values near 1) with the target's vector
// exp: libm's erff one value at a time was most of an encoder's element-wise time.
#if defined(EDGELLM_OPS_GELU_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_GELU_INL_H_
#undef EDGELLM_OPS_GELU_INL_H_
#else
#define EDGELLM_OPS_GELU_INL_H_
#endif

#include <cstdint>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/kernels_elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x[i] = 0.5 x (1 + erf(x / sqrt 2)) in place.
void GeluErf(float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto half = hn::Set(d, 0.5f), one = hn::Set(d, 1.0f), rs2 = hn::Set(d, 0.70710678118654752f);
  const auto p = hn::Set(d, 0.3275911f), lo = hn::Set(d, -104.f);
  const auto a1 = hn::Set(d, 0.254829592f), a2 = hn::Set(d, -0.284496736f), a3 = hn::Set(d, 1.421413741f);
  const auto a4 = hn::Set(d, -1.453152027f), a5 = hn::Set(d, 1.061405429f);
  MapBinary(d, x, x, x, n, [&](auto v, auto) {
    const auto z = hn::Mul(v, rs2);
    const auto az = hn::Abs(z);
    const auto t = hn::Div(one, hn::MulAdd(p, az, one));
    auto poly = hn::MulAdd(a5, t, a4);
    poly = hn::MulAdd(poly, t, a3);
    poly = hn::MulAdd(poly, t, a2);
    poly = hn::MulAdd(poly, t, a1);
    poly = hn::Mul(poly, t);
    // exp(-z^2), its argument clamped where exp underflows (the vector exp wants finite input)
    const auto e = hn::Exp(d, hn::Max(hn::Neg(hn::Mul(az, az)), lo));
    const auto erf = hn::CopySign(hn::NegMulAdd(poly, e, one), z);
    return hn::Mul(hn::Mul(half, v), hn::Add(one, erf));
  });
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
