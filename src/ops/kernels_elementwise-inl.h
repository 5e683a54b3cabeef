// Element-wise fp32 kernels, one copy per Highway target (included via foreach_target).
#if defined(EDGELLM_OPS_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ELEMENTWISE_INL_H_
#undef EDGELLM_OPS_ELEMENTWISE_INL_H_
#else
#define EDGELLM_OPS_ELEMENTWISE_INL_H_
#endif

#include <cmath>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Applies f to full vectors and, for the tail, to a vector built from a zero-padded copy
// (so every lane sees the same math as the body; no scalar fallback with other rounding).
template <class D, class F>
HWY_INLINE void MapBinary(D d, const float* a, const float* b, float* out, int64_t n, F f) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < n) {
    HWY_ALIGN float ta[hn::MaxLanes(d)] = {}, tb[hn::MaxLanes(d)] = {}, to[hn::MaxLanes(d)];
    for (int64_t j = i; j < n; ++j) ta[j - i] = a[j], tb[j - i] = b[j];
    hn::Store(f(hn::Load(d, ta), hn::Load(d, tb)), d, to);
    for (int64_t j = i; j < n; ++j) out[j] = to[j - i];
  }
}

float DotF32(const float* a, const float* b, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto va = hn::Set(d, a);
  MapBinary(d, x, y, y, n, [&](auto vx, auto vy) { return hn::MulAdd(va, vx, vy); });
}

void AddF32(const float* a, const float* b, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  MapBinary(d, a, b, out, n, [](auto va, auto vb) { return hn::Add(va, vb); });
}

void ScaleF32(float* x, float s, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto vs = hn::Set(d, s);
  MapBinary(d, x, x, x, n, [&](auto vx, auto) { return hn::Mul(vx, vs); });
}

void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  const hn::ScalableTag<float> d;
  const float ss = DotF32(x, x, n);
  const float s = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vs = hn::Set(d, s);
  if (w)
    MapBinary(d, x, w, out, n, [&](auto vx, auto vw) { return hn::Mul(hn::Mul(vx, vs), vw); });
  else
    MapBinary(d, x, x, out, n, [&](auto vx, auto) { return hn::Mul(vx, vs); });
}

// The shift of a safe softmax: max of x[0..n), or 0 when every element is -inf (all masked),
// so that x - shift is never inf - inf. A vector max: exact in any order, and scalar loops
// here were a third of the attention time at long contexts.
HWY_INLINE float MaxOf(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto vmax = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
  float mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  return mx == -INFINITY ? 0.f : mx;
}

void Softmax(float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // The sum's order differs from a scalar loop only by rounding.
  const auto vmx = hn::Set(d, MaxOf(x, n));
  // exp(-inf) must be 0: clamp the argument to a finite value whose exp underflows to 0.
  const auto lo = hn::Set(d, -104.f);
  MapBinary(d, x, x, x, n, [&](auto v, auto) { return hn::Exp(d, hn::Max(hn::Sub(v, vmx), lo)); });
  auto vsum = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) vsum = hn::Add(vsum, hn::LoadU(d, x + i));
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) sum += x[i];
  ScaleF32(x, 1.f / sum, n);
}

void SiluMul(const float* g, const float* u, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto one = hn::Set(d, 1.f);
  const auto lo = hn::Set(d, -88.f);  // exp(88) is near FLT_MAX; silu(-88) is 0 anyway
  MapBinary(d, g, u, out, n, [&](auto vg, auto vu) {
    const auto e = hn::Exp(d, hn::Neg(hn::Max(vg, lo)));
    return hn::Mul(hn::Div(vg, hn::Add(one, e)), vu);
  });
}

// Max of x[0..n) and the index of its first NaN or +inf (-1 when none): a sampler's one pass
// of input checks over the vocabulary.
float MaxChecked(const float* x, int64_t n, int64_t* first_bad) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto inf = hn::Set(d, INFINITY);
  auto vmax = hn::Set(d, -INFINITY);
  bool any_bad = false;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    vmax = hn::Max(vmax, v);
    any_bad |= !hn::AllTrue(d, hn::Lt(v, inf));  // NaN compares false; +inf is not < inf
  }
  float mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) {
    if (!(x[i] < INFINITY)) any_bad = true;
    mx = x[i] > mx ? x[i] : mx;
  }
  *first_bad = -1;
  if (any_bad)
    for (int64_t j = 0; j < n; ++j)
      if (!(x[j] < INFINITY)) {
        *first_bad = j;
        break;
      }
  return mx;
}

// Over i with x[i] >= floor: sum_e += e_i and sum_ed += e_i * (x[i] - shift), with
// e_i = exp((x[i] - shift) * scale), all in double lanes: a sampler draws against this sum and
// walks the same weights one by one in double, so both must agree far below one token's share.
void ExpSums(const float* x, int64_t n, double shift, double scale, float floor, double* sum_e, double* sum_ed) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  const auto vshift = hn::Set(dd, shift), vscale = hn::Set(dd, scale);
  const auto vfloor = hn::Set(dd, static_cast<double>(floor));
  auto ae = hn::Zero(dd), aed = hn::Zero(dd);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::PromoteTo(dd, hn::LoadU(df, x + i));
    const auto keep = hn::Ge(v, vfloor);
    const auto dx = hn::IfThenElseZero(keep, hn::Sub(v, vshift));
    const auto e = hn::IfThenElseZero(keep, hn::Exp(dd, hn::Mul(dx, vscale)));
    ae = hn::Add(ae, e);
    aed = hn::MulAdd(e, dx, aed);
  }
  double se = hn::GetLane(hn::SumOfLanes(dd, ae)), sed = hn::GetLane(hn::SumOfLanes(dd, aed));
  for (; i < n; ++i)
    if (x[i] >= floor) {
      const double dx = static_cast<double>(x[i]) - shift, e = std::exp(dx * scale);
      se += e;
      sed += e * dx;
    }
  *sum_e += se;
  if (sum_ed) *sum_ed += sed;
}

void GeluMul(const float* g, const float* u, float* out, int64_t n) {
  const hn::ScalableTag<float> d;
  const auto half = hn::Set(d, 0.5f), one = hn::Set(d, 1.f);
  const auto k0 = hn::Set(d, 0.7978845608028654f), k1 = hn::Set(d, 0.044715f);
  MapBinary(d, g, u, out, n, [&](auto v, auto vu) {
    const auto inner = hn::Mul(k0, hn::MulAdd(hn::Mul(k1, hn::Mul(v, v)), v, v));
    const auto t = hn::Tanh(d, inner);
    return hn::Mul(hn::Mul(hn::Mul(half, v), hn::Add(one, t)), vu);
  });
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
