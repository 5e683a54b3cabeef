// K-quant (Q4_K, Q5_K, Q6_K) dot kernels against Q8_KA activations, and the Q8_KA activation
// quantizer, one copy per Highway target (included via foreach_target). The shared integer
// helpers (DotU8I8, LoadF16, vector tags) live in kernels_quant-inl.h.
#if defined(EDGELLM_OPS_KQUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_KQUANT_INL_H_
#undef EDGELLM_OPS_KQUANT_INL_H_
#else
#define EDGELLM_OPS_KQUANT_INL_H_
#endif

#include <algorithm>
#include <cmath>

#include "hwy/highway.h"
#include "ops/fp16.h"
#include "ops/kernels_quant-inl.h"
#include "ops/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR  // HWY_SCALAR has 1-lane vectors only: see kernels_gemv-inl.h
// ---- K-quants (256-element super-blocks) against Q8_KA activations ----
// Q8_KA has one activation scale da_j per 32 elements (see quant_blocks.h), so each 32-element
// integer partial sum is converted and scaled on its own:
//   sum_i w_i a_i = sum_j (d * sc_j * da_j) * sum_{i in j} u_i q_i  -  offsets,
// the offsets (mins, Q6_K's -32) coming from the per-16 activation sums s[].
// Batch invariance: a token's accumulation (two alternating accumulators, block order, the
// final lane sum) is the same for NT = 1..4 and uses explicit FMAs only, so its result does not
// depend on which other tokens share the call (tests/unit/ops/batch_invariance_test.cpp).
template <bool kFive, int NT>
HWY_INLINE void DotQ45K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  // Two accumulators (even / odd sub-blocks) so the per-sub-block FMAs are not one chain.
  VF acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = hn::Zero(df), acc1[t] = hn::Zero(df);
  constexpr size_t kBlk = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * kBlk;
    const float d = LoadF16(b), dmin = LoadF16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;                      // Q5_K only
    const uint8_t* qs = b + (kFive ? 48 : 16);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k_scale_min(j, scales, sc[j], mn[j]);
    float dsc[8];
    for (int j = 0; j < 8; ++j) dsc[j] = d * static_cast<float>(sc[j]);
    VU8 h[kPerBlock];
    if constexpr (kFive)
      for (int v = 0; v < kPerBlock; ++v) h[v] = hn::LoadU(du, qh + v * kVB);
    for (int c = 0; c < 4; ++c) {
      VU8 lo[kPerBlock], hi[kPerBlock];
      for (int v = 0; v < kPerBlock; ++v) {
        const auto raw = hn::LoadU(du, qs + 32 * c + v * kVB);
        lo[v] = hn::And(raw, hn::Set(du, 0x0F));
        hi[v] = hn::ShiftRight<4>(raw);
        if constexpr (kFive) {
          const auto s16 = hn::Set(du, 16);
          lo[v] = hn::Or(lo[v], hn::IfThenElseZero(hn::TestBit(h[v], hn::Set(du, static_cast<uint8_t>(1u << (2 * c)))), s16));
          hi[v] = hn::Or(hi[v], hn::IfThenElseZero(hn::TestBit(h[v], hn::Set(du, static_cast<uint8_t>(2u << (2 * c)))), s16));
        }
      }
      for (int t = 0; t < NT; ++t) {
        const BlockQ8_KA& ab = a[t][ib];
        const uint8_t* aq = reinterpret_cast<const uint8_t*>(ab.qs) + 64 * c;
        VI32 slo = DotU8I8(lo[0], hn::LoadU(du, aq), 1, 1);
        VI32 shi = DotU8I8(hi[0], hn::LoadU(du, aq + 32), 1, 1);
        for (int v = 1; v < kPerBlock; ++v) {
          slo = hn::Add(slo, DotU8I8(lo[v], hn::LoadU(du, aq + v * kVB), 1, 1));
          shi = hn::Add(shi, DotU8I8(hi[v], hn::LoadU(du, aq + 32 + v * kVB), 1, 1));
        }
        acc0[t] = hn::MulAdd(hn::ConvertTo(df, slo), hn::Set(df, dsc[2 * c] * ab.d[2 * c]), acc0[t]);
        acc1[t] = hn::MulAdd(hn::ConvertTo(df, shi), hn::Set(df, dsc[2 * c + 1] * ab.d[2 * c + 1]), acc1[t]);
      }
    }
    // Mins: acc -= (dmin * mn[j/2]) * s[j] over the 16 half-sub-blocks, as vector FMAs.
    alignas(64) float wm[16];
    for (int j = 0; j < 16; ++j) wm[j] = dmin * static_cast<float>(mn[j / 2]);
    for (int t = 0; t < NT; ++t)
      for (size_t j = 0; j < 16; j += hn::Lanes(df))
        acc0[t] = hn::NegMulAdd(hn::Load(df, wm + j), hn::LoadU(df, a[t][ib].s + j), acc0[t]);
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[t], acc1[t])));
}

template <int NT>
HWY_INLINE void DotQ6K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  VF acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = hn::Zero(df), acc1[t] = hn::Zero(df);
  const auto m4 = hn::Set(du, 0x0F), m2 = hn::Set(du, 3);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * sizeof(BlockQ6_K);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = LoadF16(b + 208);
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = b + 64 * n;
      const uint8_t* qh = b + 128 + 32 * n;
      // q[k][v]: elements 128n + 32k + v*kVB ... (+kVB), i.e. sub-block of 32 number 4n + k.
      VU8 q[4][kPerBlock];
      for (int v = 0; v < kPerBlock; ++v) {
        const auto l0 = hn::LoadU(du, ql + v * kVB), l1 = hn::LoadU(du, ql + 32 + v * kVB);
        const auto hb = hn::LoadU(du, qh + v * kVB);
        q[0][v] = hn::Or(hn::And(l0, m4), hn::ShiftLeft<4>(hn::And(hb, m2)));
        q[1][v] = hn::Or(hn::And(l1, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), m2)));
        q[2][v] = hn::Or(hn::ShiftRight<4>(l0), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), m2)));
        q[3][v] = hn::Or(hn::ShiftRight<4>(l1), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb)));
      }
      for (int k = 0; k < 4; ++k) {
        const int j32 = 4 * n + k;  // sub-block of 32 = activation scale index
        for (int t = 0; t < NT; ++t) {
          const BlockQ8_KA& ab = a[t][ib];
          const uint8_t* aq = reinterpret_cast<const uint8_t*>(ab.qs) + 32 * j32;
          // The 16-element weight scales stay integer (madd); s_hi is used by 256-bit vectors only.
          VI32 s = DotU8I8(q[k][0], hn::LoadU(du, aq), sc[2 * j32], sc[2 * j32 + 1]);
          for (int v = 1; v < kPerBlock; ++v)
            s = hn::Add(s, DotU8I8(q[k][v], hn::LoadU(du, aq + v * kVB), sc[2 * j32 + v], sc[2 * j32 + v]));
          VF& acc = (k & 1) ? acc1[t] : acc0[t];
          acc = hn::MulAdd(hn::ConvertTo(df, s), hn::Set(df, d * ab.d[j32]), acc);
        }
      }
    }
    // The -32 offset: acc -= (32 * d * sc[j]) * s[j], as vector FMAs.
    alignas(64) float wo[16];
    for (int j = 0; j < 16; ++j) wo[j] = 32.f * d * static_cast<float>(sc[j]);
    for (int t = 0; t < NT; ++t)
      for (size_t j = 0; j < 16; j += hn::Lanes(df))
        acc0[t] = hn::NegMulAdd(hn::Load(df, wo + j), hn::LoadU(df, a[t][ib].s + j), acc0[t]);
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[t], acc1[t])));
}

#endif  // HWY_TARGET != HWY_SCALAR

// ---- activation quantization ----
// Q8_KA: one scale per 32 elements, d = amax/127 and round-to-nearest-even (the same rounding
// as QuantizeQ8A, so both encodings of a row hold the same int8 values).
void QuantizeQ8KA(const float* x, int64_t n, BlockQ8_KA* out) {
  const hn::CappedTag<float, 32> df;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  for (int64_t ib = 0; ib < n / 256; ++ib) {
    BlockQ8_KA& o = out[ib];
    for (int j = 0; j < 8; ++j) {
      const float* xb = x + 256 * ib + 32 * j;
      auto vmax = hn::Zero(df);
      for (size_t k = 0; k < 32; k += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + k)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
      const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
      for (size_t k = 0; k < 32; k += N)
        hn::StoreU(hn::DemoteTo(d8, hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), hn::Set(df, id)))), d8,
                   o.qs + 32 * j + k);
      o.d[j] = d;
    }
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += o.qs[16 * j + l];
      o.s[j] = o.d[j / 2] * static_cast<float>(s);
    }
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
