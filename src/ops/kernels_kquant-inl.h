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
template <bool kFive, int NT>
HWY_INLINE void DotQ45K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  const DI32 di;
  VF acc[NT];
  float off[NT];
  for (int t = 0; t < NT; ++t) acc[t] = hn::Zero(df), off[t] = 0.f;
  constexpr size_t kBlk = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * kBlk;
    const float d = LoadF16(b), dmin = LoadF16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;                      // Q5_K only
    const uint8_t* qs = b + (kFive ? 48 : 16);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k_scale_min(j, scales, sc[j], mn[j]);
    VI32 sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = hn::Zero(di);
    VU8 h[kPerBlock];
    if constexpr (kFive)
      for (int v = 0; v < kPerBlock; ++v) h[v] = hn::LoadU(du, qh + v * kVB);
    for (int c = 0; c < 4; ++c) {
      for (int v = 0; v < kPerBlock; ++v) {
        const auto raw = hn::LoadU(du, qs + 32 * c + v * kVB);
        auto lo = hn::And(raw, hn::Set(du, 0x0F));
        auto hi = hn::ShiftRight<4>(raw);
        if constexpr (kFive) {
          const auto s16 = hn::Set(du, 16);
          lo = hn::Or(lo, hn::IfThenElseZero(hn::TestBit(h[v], hn::Set(du, static_cast<uint8_t>(1u << (2 * c)))), s16));
          hi = hn::Or(hi, hn::IfThenElseZero(hn::TestBit(h[v], hn::Set(du, static_cast<uint8_t>(2u << (2 * c)))), s16));
        }
        for (int t = 0; t < NT; ++t) {
          const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + 64 * c + v * kVB;
          sumi[t] = hn::Add(sumi[t], DotU8I8(lo, hn::LoadU(du, aq), sc[2 * c], sc[2 * c]));
          sumi[t] = hn::Add(sumi[t], DotU8I8(hi, hn::LoadU(du, aq + 32), sc[2 * c + 1], sc[2 * c + 1]));
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      int summ = 0;
      for (int j = 0; j < 8; ++j) summ += mn[j] * (ab.bsums[2 * j] + ab.bsums[2 * j + 1]);
      acc[t] = hn::MulAdd(hn::ConvertTo(df, sumi[t]), hn::Set(df, d * ab.d), acc[t]);
      off[t] -= dmin * ab.d * static_cast<float>(summ);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + off[t];
}

template <int NT>
HWY_INLINE void DotQ6K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  const DI32 di;
  VF acc[NT];
  float off[NT];
  for (int t = 0; t < NT; ++t) acc[t] = hn::Zero(df), off[t] = 0.f;
  const auto m4 = hn::Set(du, 0x0F), m2 = hn::Set(du, 3);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * sizeof(BlockQ6_K);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = LoadF16(b + 208);
    VI32 sumi[NT];
    for (int t = 0; t < NT; ++t) sumi[t] = hn::Zero(di);
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = b + 64 * n;
      const uint8_t* qh = b + 128 + 32 * n;
      for (int v = 0; v < kPerBlock; ++v) {
        const auto l0 = hn::LoadU(du, ql + v * kVB), l1 = hn::LoadU(du, ql + 32 + v * kVB);
        const auto hb = hn::LoadU(du, qh + v * kVB);
        VU8 q[4];
        q[0] = hn::Or(hn::And(l0, m4), hn::ShiftLeft<4>(hn::And(hb, m2)));
        q[1] = hn::Or(hn::And(l1, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), m2)));
        q[2] = hn::Or(hn::ShiftRight<4>(l0), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), m2)));
        q[3] = hn::Or(hn::ShiftRight<4>(l1), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb)));
        for (int k = 0; k < 4; ++k) {
          const int e = 128 * n + 32 * k + v * static_cast<int>(kVB);  // first element
          const int s_lo = sc[e / 16], s_hi = sc[(e + static_cast<int>(kVB) - 1) / 16];
          for (int t = 0; t < NT; ++t) {
            const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + e;
            sumi[t] = hn::Add(sumi[t], DotU8I8(q[k], hn::LoadU(du, aq), s_lo, s_hi));
          }
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      int sb = 0;  // the -32 offset: sum_j sc_j * bsum_j
      for (int j = 0; j < 16; ++j) sb += sc[j] * ab.bsums[j];
      acc[t] = hn::MulAdd(hn::ConvertTo(df, sumi[t]), hn::Set(df, d * ab.d), acc[t]);
      off[t] -= 32.f * d * ab.d * static_cast<float>(sb);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + off[t];
}

#endif  // HWY_TARGET != HWY_SCALAR

// ---- activation quantization ----
void QuantizeQ8KA(const float* x, int64_t n, BlockQ8_KA* out) {
  const hn::CappedTag<float, 32> df;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  for (int64_t ib = 0; ib < n / 256; ++ib) {
    const float* xb = x + 256 * ib;
    auto vmax = hn::Zero(df);
    for (size_t k = 0; k < 256; k += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + k)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.f, id = d > 0 ? 1.f / d : 0.f;
    BlockQ8_KA& o = out[ib];
    for (size_t k = 0; k < 256; k += N)
      hn::StoreU(hn::DemoteTo(d8, hn::NearestInt(hn::Mul(hn::LoadU(df, xb + k), hn::Set(df, id)))), d8, o.qs + k);
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += o.qs[16 * j + l];
      o.bsums[j] = static_cast<int16_t>(s);
    }
    o.d = d;
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
