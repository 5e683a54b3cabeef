// Integer dot-product kernels for quantized weights times int8-quantized activations, one
// copy per Highway target (included via foreach_target). A 32-quant block is one 256-bit
// vector on AVX2/AVX3 and two 128-bit vectors elsewhere; the u8 x i8 -> i32 product uses
// maddubs/madd on x86 (raw intrinsics: hwy 1.0.3 has no SatWidenMulPairwiseAdd) and
// widening multiplies on other targets.
#if defined(EDGELLM_OPS_QUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_QUANT_INL_H_
#undef EDGELLM_OPS_QUANT_INL_H_
#else
#define EDGELLM_OPS_QUANT_INL_H_
#endif

#include <algorithm>
#include <cmath>

#include "hwy/highway.h"
#include "ops/fp16.h"
#include "ops/quant_blocks.h"

#undef EDGELLM_X86_256
#undef EDGELLM_X86_128
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define EDGELLM_X86_256 1
#define EDGELLM_X86_128 0
#elif HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3
#define EDGELLM_X86_256 0
#define EDGELLM_X86_128 1
#else
#define EDGELLM_X86_256 0
#define EDGELLM_X86_128 0
#endif

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR  // HWY_SCALAR has 1-lane vectors only: see kernels_gemv-inl.h
constexpr size_t kVB = EDGELLM_X86_256 ? 32 : 16;  // bytes per integer vector
constexpr int kPerBlock = static_cast<int>(32 / kVB);  // vectors per 32 quants
using DU8 = hn::FixedTag<uint8_t, kVB>;
using DI8 = hn::FixedTag<int8_t, kVB>;
using DI16 = hn::FixedTag<int16_t, kVB / 2>;
using DI32 = hn::FixedTag<int32_t, kVB / 4>;
using DF32 = hn::FixedTag<float, kVB / 4>;
using VU8 = hn::Vec<DU8>;
using VI32 = hn::Vec<DI32>;
using VF = hn::Vec<DF32>;

HWY_INLINE float LoadF16(const void* p) {
#if EDGELLM_X86_256
  return _cvtsh_ss(load_u16(p));  // F16C is part of the AVX2 target
#else
  return f16_to_f32(load_u16(p));
#endif
}

// i32 lanes = sums of 4 adjacent w (unsigned, <= 128) * a (signed, |a| <= 127) products,
// where products from the first 16 bytes are scaled by s_lo and the rest by s_hi.
HWY_INLINE VI32 DotU8I8(VU8 w, VU8 a, int s_lo, int s_hi) {
#if EDGELLM_X86_256
  const __m256i p = _mm256_maddubs_epi16(w.raw, a.raw);
  const __m256i s = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(s_hi)),
                                     _mm_set1_epi16(static_cast<int16_t>(s_lo)));
  return VI32{_mm256_madd_epi16(p, s)};
#elif EDGELLM_X86_128
  (void)s_hi;
  return VI32{_mm_madd_epi16(_mm_maddubs_epi16(w.raw, a.raw), _mm_set1_epi16(static_cast<int16_t>(s_lo)))};
#else
  (void)s_hi;
  const DI16 d16;
  const DI32 d32;
  const DI8 d8;
  const hn::Half<DU8> dhu;
  const hn::Half<DI8> dhi;
  const auto ai = hn::BitCast(d8, a);
  const auto w_lo = hn::PromoteTo(d16, hn::LowerHalf(dhu, w));
  const auto w_hi = hn::PromoteTo(d16, hn::UpperHalf(dhu, w));
  const auto a_lo = hn::PromoteTo(d16, hn::LowerHalf(dhi, ai));
  const auto a_hi = hn::PromoteTo(d16, hn::UpperHalf(dhi, ai));
  auto s1 = hn::Zero(d32);
  auto s0 = hn::ReorderWidenMulAccumulate(d32, w_lo, a_lo, hn::Zero(d32), s1);
  s0 = hn::ReorderWidenMulAccumulate(d32, w_hi, a_hi, s0, s1);
  return hn::Mul(hn::Add(s0, s1), hn::Set(d32, s_lo));
#endif
}

// Signed weights (Q8_0): w * a via |w| * (a * sign(w)).
HWY_INLINE VI32 DotI8I8(VU8 w, VU8 a) {
#if EDGELLM_X86_256
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w.raw, w.raw), _mm256_sign_epi8(a.raw, w.raw));
  return VI32{_mm256_madd_epi16(p, _mm256_set1_epi16(1))};
#elif EDGELLM_X86_128
  const __m128i p = _mm_maddubs_epi16(_mm_sign_epi8(w.raw, w.raw), _mm_sign_epi8(a.raw, w.raw));
  return VI32{_mm_madd_epi16(p, _mm_set1_epi16(1))};
#else
  const DI16 d16;
  const DI32 d32;
  const DI8 d8;
  const hn::Half<DI8> dh;
  const auto wi = hn::BitCast(d8, w), ai = hn::BitCast(d8, a);
  auto s1 = hn::Zero(d32);
  auto s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LowerHalf(dh, wi)),
                                          hn::PromoteTo(d16, hn::LowerHalf(dh, ai)), hn::Zero(d32), s1);
  s0 = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::UpperHalf(dh, wi)),
                                     hn::PromoteTo(d16, hn::UpperHalf(dh, ai)), s0, s1);
  return hn::Add(s0, s1);
#endif
}

// 16 packed bytes -> 32 nibbles (byte j: low nibble = element j, high = element j + 16).
HWY_INLINE void Nibbles32(const uint8_t* p, VU8* q) {
#if EDGELLM_X86_256
  // 16 bytes in both halves, the upper half shifted right by 4, one mask: 3 instructions
  // (load-broadcast, variable shift, and) instead of 5 (load, shift, 2x and, insert).
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i sh = _mm256_srlv_epi64(raw, _mm256_set_epi64x(4, 4, 0, 0));
  q[0] = VU8{_mm256_and_si256(sh, _mm256_set1_epi8(0x0F))};
#else
  const DU8 d;
  const auto raw = hn::LoadU(d, p);
  q[0] = hn::And(raw, hn::Set(d, 0x0F));
  q[1] = hn::ShiftRight<4>(raw);
#endif
}

// Adds 16 to element j of the 32 where bit j of qh is set (5th bit of Q5_0/Q5_1).
HWY_INLINE void HighBits32(uint32_t qh, VU8* q) {
  const DU8 d;
  const hn::Repartition<uint32_t, DU8> d32;
  alignas(32) static constexpr uint8_t kIdx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                   2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
  alignas(32) static constexpr uint8_t kBit[32] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
                                                   1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  // Every 128-bit block holds qh's 4 bytes, so the per-block byte shuffle can pick any.
  const auto bytes = hn::BitCast(d, hn::Set(d32, qh));
  for (int v = 0; v < kPerBlock; ++v) {
    const auto sel = hn::TableLookupBytes(bytes, hn::Load(d, kIdx + v * kVB));
    const auto m = hn::TestBit(sel, hn::Load(d, kBit + v * kVB));
    q[v] = hn::Or(q[v], hn::IfThenElseZero(m, hn::Set(d, 16)));
  }
}

// ---- legacy 32-element formats: value = dw * u + cw, u unsigned (or signed for Q8_0) ----
struct FmtQ8_0 {
  static constexpr size_t kBytes = 34;
  static constexpr bool kSigned = true;
  static HWY_INLINE void Load(const uint8_t* b, VU8* q, float& dw, float& cw) {
    dw = LoadF16(b);
    cw = 0;
    for (int v = 0; v < kPerBlock; ++v) q[v] = hn::LoadU(DU8(), b + 2 + v * kVB);
  }
};
struct FmtQ4_0 {
  static constexpr size_t kBytes = 18;
  static constexpr bool kSigned = false;
  static HWY_INLINE void Load(const uint8_t* b, VU8* q, float& dw, float& cw) {
    dw = LoadF16(b);
    cw = -8.f * dw;
    Nibbles32(b + 2, q);
  }
};
struct FmtQ4_1 {
  static constexpr size_t kBytes = 20;
  static constexpr bool kSigned = false;
  static HWY_INLINE void Load(const uint8_t* b, VU8* q, float& dw, float& cw) {
    dw = LoadF16(b);
    cw = LoadF16(b + 2);
    Nibbles32(b + 4, q);
  }
};
struct FmtQ5_0 {
  static constexpr size_t kBytes = 22;
  static constexpr bool kSigned = false;
  static HWY_INLINE void Load(const uint8_t* b, VU8* q, float& dw, float& cw) {
    dw = LoadF16(b);
    cw = -16.f * dw;
    Nibbles32(b + 6, q);
    HighBits32(load_u32(b + 2), q);
  }
};
struct FmtQ5_1 {
  static constexpr size_t kBytes = 24;
  static constexpr bool kSigned = false;
  static HWY_INLINE void Load(const uint8_t* b, VU8* q, float& dw, float& cw) {
    dw = LoadF16(b);
    cw = LoadF16(b + 2);
    Nibbles32(b + 8, q);
    HighBits32(load_u32(b + 4), q);
  }
};

// One weight row (nb blocks) against NT activation rows: out[t] = dot.
// Per block: dw*da*sum(u*a) + cw*(da*sum(a)); the weight block is decoded once for all NT.
template <class Fmt, int NT>
HWY_INLINE void DotLegacy(const uint8_t* w, int64_t nb, const BlockQ8_A* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  // Two accumulators alternate blocks so the per-block FMA chain does not bound the loop; the
  // same for every NT, so a token's result does not depend on how many share the row.
  constexpr int kU = 2;
  VF acc[kU][NT];
  float off[NT];
  for (int t = 0; t < NT; ++t) {
    off[t] = 0.f;
    for (int u = 0; u < kU; ++u) acc[u][t] = hn::Zero(df);
  }
  auto block = [&](int64_t ib, VF* acc_u) HWY_ATTR {
    VU8 q[kPerBlock];
    float dw, cw;
    Fmt::Load(w + ib * Fmt::kBytes, q, dw, cw);
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_A& ab = a[t][ib];
      const uint8_t* aq = reinterpret_cast<const uint8_t*>(ab.qs);
      VI32 s;
      if constexpr (Fmt::kSigned) {
        s = DotI8I8(q[0], hn::LoadU(du, aq));
        for (int v = 1; v < kPerBlock; ++v) s = hn::Add(s, DotI8I8(q[v], hn::LoadU(du, aq + v * kVB)));
      } else {
        s = DotU8I8(q[0], hn::LoadU(du, aq), 1, 1);
        for (int v = 1; v < kPerBlock; ++v) s = hn::Add(s, DotU8I8(q[v], hn::LoadU(du, aq + v * kVB), 1, 1));
      }
      acc_u[t] = hn::MulAdd(hn::ConvertTo(df, s), hn::Set(df, dw * ab.d), acc_u[t]);
      off[t] += cw * ab.s;
    }
  };
  int64_t ib = 0;
  for (; ib + kU <= nb; ib += kU)
    for (int u = 0; u < kU; ++u) block(ib + u, acc[u]);
  for (; ib < nb; ++ib) block(ib, acc[0]);
  for (int t = 0; t < NT; ++t) {
    VF sum = acc[0][t];
    for (int u = 1; u < kU; ++u) sum = hn::Add(sum, acc[u][t]);
    out[t] = hn::GetLane(hn::SumOfLanes(df, sum)) + off[t];
  }
}

#endif  // HWY_TARGET != HWY_SCALAR

// ---- activation quantization ----
// One 32-element block: d = amax/127, qs = round-half-even(x / d), and the int sums of
// qs[0..16) and qs[16..32) (the offset terms of Q8_A and Q8_KA). The sums come from the int32
// lanes, clamped as the int8 store saturates, instead of a scalar pass over the stored bytes:
// decode quantizes every matmul's input on the caller thread while the others wait.
struct Q8Block32 {
  float d;
  int32_t sum_lo, sum_hi;
};
inline Q8Block32 QuantizeBlock32(const float* xb, int8_t* qs) {
  const hn::CappedTag<float, 16> df;  // at most 16 lanes, so no vector spans both halves
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  auto vmax = hn::Zero(df);
  for (size_t k = 0; k < 32; k += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + k)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
  const auto lo_clamp = hn::Set(di, -128), hi_clamp = hn::Set(di, 127);
  auto sum_lo = hn::Zero(di), sum_hi = hn::Zero(di);
  for (size_t k = 0; k < 32; k += N) {
    const auto q = hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), hn::Set(df, id))), lo_clamp), hi_clamp);
    hn::StoreU(hn::DemoteTo(d8, q), d8, qs + k);
    if (k < 16)
      sum_lo = hn::Add(sum_lo, q);
    else
      sum_hi = hn::Add(sum_hi, q);
  }
  return {d, hn::GetLane(hn::SumOfLanes(di, sum_lo)), hn::GetLane(hn::SumOfLanes(di, sum_hi))};
}

void QuantizeQ8A(const float* x, int64_t n, BlockQ8_A* out) {
  for (int64_t ib = 0; ib < n / 32; ++ib) {
    const Q8Block32 b = QuantizeBlock32(x + 32 * ib, out[ib].qs);
    out[ib].d = b.d;
    out[ib].s = b.d * static_cast<float>(b.sum_lo + b.sum_hi);
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
