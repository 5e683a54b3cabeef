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
#include <cstring>

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
// The per-block scales are unpacked and converted as vectors, and the per-token scales
// (d * sc_j) * da_j are one vector multiply: scalar work per block was the main cost.
// On AVX2/AVX3 the 8 sub-block integer sums of a token are reduced (phadd) into one vector of 8
// lanes, one per sub-block, so each block takes one convert and one FMA per token.
// Batch invariance: a token's operations (block order, accumulators, the final lane sum) are the
// same for NT = 1..4 and use explicit FMAs only; only per-block weight values are shared, so its
// result does not depend on which other tokens share the call
// (tests/unit/ops/batch_invariance_test.cpp).
constexpr int kNF = static_cast<int>(kVB / 4);  // floats per VF

// k_scale_min for all 8 sub-blocks at once on 32-bit words: sm[0..7] = scales, sm[8..15] = mins.
HWY_INLINE void KScaleMin8(const uint8_t* q, uint8_t* sm) {
  constexpr uint32_t k6 = 0x3f3f3f3f, k4 = 0x0f0f0f0f, k2 = 0x03030303;
  uint32_t u[4];
  std::memcpy(u, q, 12);
  u[3] = ((u[2] >> 4) & k4) | (((u[1] >> 6) & k2) << 4);  // mins 4..7
  const uint32_t mins03 = u[1] & k6;
  u[1] = (u[2] & k4) | (((u[0] >> 6) & k2) << 4);  // scales 4..7
  u[2] = mins03;
  u[0] &= k6;  // scales 0..3
  std::memcpy(sm, u, 16);
}

// kNF bytes at p (u8 or i8) -> floats.
template <typename T>
HWY_INLINE VF BytesToF(const T* p) {
  const DF32 df;
  const DI32 di;
  return hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(hn::Rebind<T, DI32>(), p)));
}

// Shifts 16-bit lanes left by S (right for S < 0): for moving bit fields within bytes when the
// caller masks off what crosses a byte boundary.
template <int S>
HWY_INLINE VU8 Shift16(VU8 v) {
  const hn::Repartition<uint16_t, DU8> d16;
  if constexpr (S > 0) return hn::BitCast(DU8(), hn::ShiftLeft<S>(hn::BitCast(d16, v)));
  if constexpr (S < 0) return hn::BitCast(DU8(), hn::ShiftRight<-S>(hn::BitCast(d16, v)));
  return v;
}

#if EDGELLM_X86_256
// KScaleMin8 straight into i32 lanes, as sc = [sc0..sc7] and the mins each twice (one per
// half-sub-block of 16, as s[]), mn0 = [mn0 mn0 .. mn3 mn3], mn1 = [mn4 mn4 .. mn7 mn7]. One byte
// shuffle per vector puts the low-bits byte in byte 0 of each lane and, where the top 2 bits
// come from another byte, that byte in byte 1; masks and shifts finish.
HWY_INLINE void KScaleMinX86(const uint8_t* q, __m256i& sc, __m256i& mn0, __m256i& mn1) {
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  const __m256i k15 = _mm256_set1_epi32(15), k30 = _mm256_set1_epi32(0x30);
  // j < 4: q[j] & 63; j >= 4: (q[j+4] & 15) | (q[j-4] >> 6) << 4, from v = q[j+4] | q[j-4] << 8.
  const __m256i vs = _mm256_shuffle_epi8(raw, _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1,
                                                               -1, 8, 0, -1, -1, 9, 1, -1, -1, 10, 2, -1, -1, 11, 3,
                                                               -1, -1));
  sc = _mm256_or_si256(_mm256_and_si256(vs, _mm256_setr_epi32(63, 63, 63, 63, 15, 15, 15, 15)),
                       _mm256_and_si256(_mm256_srli_epi32(vs, 10), k30));
  // k < 4: q[k+4] & 63.
  const __m256i vn = _mm256_shuffle_epi8(raw, _mm256_setr_epi8(4, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, 5, -1, -1,
                                                               -1, 6, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1, 7, -1,
                                                               -1, -1));
  mn0 = _mm256_and_si256(vn, _mm256_set1_epi32(63));
  // k >= 4: (q[k+4] >> 4) | (q[k] >> 6) << 4, from v = q[k+4] | q[k] << 8.
  const __m256i vm = _mm256_srli_epi32(
      _mm256_shuffle_epi8(raw, _mm256_setr_epi8(8, 4, -1, -1, 8, 4, -1, -1, 9, 5, -1, -1, 9, 5, -1, -1,
                                                10, 6, -1, -1, 10, 6, -1, -1, 11, 7, -1, -1, 11, 7, -1, -1)),
      4);
  mn1 = _mm256_or_si256(_mm256_and_si256(vm, k15), _mm256_and_si256(_mm256_srli_epi32(vm, 6), k30));
}

// i32 lanes [sb0..sb3 first 16 | sb0..sb3 last 16] (h01) and likewise for sb4..sb7 (h23)
// -> [sb0..sb7] whole-sub-block sums.
HWY_INLINE VI32 Sum8(__m256i h01, __m256i h23) {
  return VI32{_mm256_add_epi32(_mm256_blend_epi32(h01, h23, 0xF0), _mm256_permute2x128_si256(h01, h23, 0x21))};
}
#endif

template <bool kFive, int NT>
HWY_INLINE void DotQ45K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  // Two accumulators per token so consecutive FMAs are not one chain.
  VF acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = hn::Zero(df), acc1[t] = hn::Zero(df);
  constexpr size_t kBlk = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  const auto m4 = hn::Set(du, 0x0F);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * kBlk;
    const float d = LoadF16(b), dmin = LoadF16(b + 2);
    const uint8_t* qh = b + 16;  // Q5_K only
    const uint8_t* qs = b + (kFive ? 48 : 16);
    VF dsc[8 / kNF], wm[16 / kNF];  // d * sc_j; dmin * mn_{j/2}
#if EDGELLM_X86_256
    {
      __m256i sc, mn0, mn1;
      KScaleMinX86(b + 4, sc, mn0, mn1);
      dsc[0] = hn::Mul(hn::Set(df, d), hn::ConvertTo(df, VI32{sc}));
      wm[0] = hn::Mul(hn::Set(df, dmin), hn::ConvertTo(df, VI32{mn0}));
      wm[1] = hn::Mul(hn::Set(df, dmin), hn::ConvertTo(df, VI32{mn1}));
    }
#else
    {
      // sm: 8 scales, 8 mins; mm: each min twice, one per half-sub-block of 16 (as s[]).
      alignas(16) uint8_t sm[16], mm[16];
      KScaleMin8(b + 4, sm);
      const hn::FixedTag<uint8_t, 16> d16;
      const auto v = hn::LoadU(d16, sm);
      hn::StoreU(hn::InterleaveUpper(d16, v, v), d16, mm);
      for (int i = 0; i < 8 / kNF; ++i) dsc[i] = hn::Mul(hn::Set(df, d), BytesToF(sm + i * kNF));
      for (int i = 0; i < 16 / kNF; ++i) wm[i] = hn::Mul(hn::Set(df, dmin), BytesToF(mm + i * kNF));
    }
#endif
#if EDGELLM_X86_256
    // Per token: u = 16-bit phadd of the maddubs of sub-blocks 2c, 2c+1 (pairs <= 2*31*127;
    // after two phadds <= 8*31*127 = 31496, so i16 holds them), one madd to i32 per two chunks,
    // then Sum8. Chunk by chunk, so few vectors are live (AVX2 has 16 registers).
    const __m256i one = _mm256_set1_epi16(1);
    __m256i u[NT][2], hsum[NT][2];
    const auto chunk = [&](VU8 lo, VU8 hi, int c) {
      for (int t = 0; t < NT; ++t) {
        const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + 64 * c;
        u[t][c & 1] = _mm256_hadd_epi16(_mm256_maddubs_epi16(lo.raw, hn::LoadU(du, aq).raw),
                                        _mm256_maddubs_epi16(hi.raw, hn::LoadU(du, aq + 32).raw));
        if (c & 1) hsum[t][c >> 1] = _mm256_madd_epi16(_mm256_hadd_epi16(u[t][0], u[t][1]), one);
      }
    };
    VU8 h;
    if constexpr (kFive) h = hn::LoadU(du, qh);
    for (int c = 0; c < 4; ++c) {
      const auto raw = hn::LoadU(du, qs + 32 * c);
      VU8 lo = hn::And(raw, m4), hi = hn::ShiftRight<4>(raw);
      if constexpr (kFive) {
        // Bits 2c, 2c+1 of qh are at bits 0, 1 of h (16-bit shifts: what a byte takes from its
        // neighbour lands above bit 1 and is masked off).
        lo = hn::Or(lo, hn::And(Shift16<4>(h), hn::Set(du, 0x10)));
        hi = hn::Or(hi, hn::And(Shift16<3>(h), hn::Set(du, 0x10)));
        h = Shift16<-2>(h);
      }
      chunk(lo, hi, c);
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      // Mins: sum_j (dmin * mn[j/2]) * s[j] over the 16 half-sub-blocks.
      const VF mins = hn::MulAdd(wm[1], hn::LoadU(df, ab.s + 8), hn::Mul(wm[0], hn::LoadU(df, ab.s)));
      const VF sc = hn::Mul(dsc[0], hn::LoadU(df, ab.d));  // (d * sc_j) * da_j
      acc0[t] = hn::Add(acc0[t], hn::MulSub(hn::ConvertTo(df, Sum8(hsum[t][0], hsum[t][1])), sc, mins));
    }
#else
    // q[j][v]: sub-block j of 32, unsigned quants.
    VU8 q[8][kPerBlock];
    for (int v = 0; v < kPerBlock; ++v) {
      for (int c = 0; c < 4; ++c) {
        const auto raw = hn::LoadU(du, qs + 32 * c + v * kVB);
        q[2 * c][v] = hn::And(raw, m4);
        q[2 * c + 1][v] = hn::ShiftRight<4>(raw);
      }
      if constexpr (kFive) {
        auto h = hn::LoadU(du, qh + v * kVB);  // as above
        for (int c = 0; c < 4; ++c) {
          q[2 * c][v] = hn::Or(q[2 * c][v], hn::And(Shift16<4>(h), hn::Set(du, 0x10)));
          q[2 * c + 1][v] = hn::Or(q[2 * c + 1][v], hn::And(Shift16<3>(h), hn::Set(du, 0x10)));
          h = Shift16<-2>(h);
        }
      }
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      const uint8_t* aq = reinterpret_cast<const uint8_t*>(ab.qs);
      VF mins = hn::Mul(wm[0], hn::LoadU(df, ab.s));
      for (int v = 1; v < 16 / kNF; ++v) mins = hn::MulAdd(wm[v], hn::LoadU(df, ab.s + v * kNF), mins);
      alignas(64) float sc[8];  // (d * sc_j) * da_j, read back as broadcasts
      for (int v = 0; v < 8 / kNF; ++v) hn::Store(hn::Mul(dsc[v], hn::LoadU(df, ab.d + v * kNF)), df, sc + v * kNF);
      for (int c = 0; c < 4; ++c) {
        VI32 slo = DotU8I8(q[2 * c][0], hn::LoadU(du, aq + 64 * c), 1, 1);
        VI32 shi = DotU8I8(q[2 * c + 1][0], hn::LoadU(du, aq + 64 * c + 32), 1, 1);
        for (int v = 1; v < kPerBlock; ++v) {
          slo = hn::Add(slo, DotU8I8(q[2 * c][v], hn::LoadU(du, aq + 64 * c + v * kVB), 1, 1));
          shi = hn::Add(shi, DotU8I8(q[2 * c + 1][v], hn::LoadU(du, aq + 64 * c + 32 + v * kVB), 1, 1));
        }
        acc0[t] = hn::MulAdd(hn::ConvertTo(df, slo), hn::Set(df, sc[2 * c]), acc0[t]);
        acc1[t] = hn::MulAdd(hn::ConvertTo(df, shi), hn::Set(df, sc[2 * c + 1]), acc1[t]);
      }
      acc1[t] = hn::Sub(acc1[t], mins);
    }
#endif
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[t], acc1[t])));
}

template <int NT>
HWY_INLINE void DotQ6K(const uint8_t* w, int64_t nb, const BlockQ8_KA* const* a, float* out) {
  const DF32 df;
  const DU8 du;
  VF acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = hn::Zero(df), acc1[t] = hn::Zero(df);
  const auto m4 = hn::Set(du, 0x0F);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = w + ib * sizeof(BlockQ6_K);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = LoadF16(b + 208);
    // The -32 offset: (32 * d * sc[j]) * s[j] over the 16 half-sub-blocks.
    VF wo[16 / kNF];
    for (int v = 0; v < 16 / kNF; ++v) wo[v] = hn::Mul(hn::Set(df, 32.f * d), BytesToF(sc + v * kNF));
#if EDGELLM_X86_256
    // i16 scales for a pair of sub-blocks (2p, 2p+1) after one 16-bit phadd of their maddubs:
    // lanes [sc[4p] x4, sc[4p+2] x4 | sc[4p+1] x4, sc[4p+3] x4]. Each byte lands in the high half
    // of its i16 (the 0x80 indices give zero low bytes) and an arithmetic shift sign-extends it.
    __m256i scp[4];
    {
      const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      const __m256i idx = _mm256_setr_epi8(-128, 0, -128, 0, -128, 0, -128, 0, -128, 2, -128, 2, -128, 2, -128, 2,
                                           -128, 1, -128, 1, -128, 1, -128, 1, -128, 3, -128, 3, -128, 3, -128, 3);
      for (int p = 0; p < 4; ++p)
        scp[p] = _mm256_srai_epi16(
            _mm256_shuffle_epi8(raw, _mm256_add_epi8(idx, _mm256_set1_epi8(static_cast<char>(4 * p)))), 8);
    }
    // Per token: the maddubs of sub-blocks 2p, 2p+1 (pairs <= 2*63*127) through one 16-bit
    // phadd stay below 32767; the madd applies the 16-element scales, a 32-bit phadd per two
    // pairs and Sum8 the rest. Pair by pair, so few vectors are live.
    __m256i u[NT][2], hsum[NT][2];
    const auto pair = [&](VU8 qa, VU8 qb, int p) {
      for (int t = 0; t < NT; ++t) {
        const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + 64 * p;
        u[t][p & 1] = _mm256_madd_epi16(_mm256_hadd_epi16(_mm256_maddubs_epi16(qa.raw, hn::LoadU(du, aq).raw),
                                                          _mm256_maddubs_epi16(qb.raw, hn::LoadU(du, aq + 32).raw)),
                                        scp[p]);
        if (p & 1) hsum[t][p >> 1] = _mm256_hadd_epi32(u[t][0], u[t][1]);
      }
    };
    // Sub-block 4n + k: a nibble of ql (low: k < 2, of the first or second 32 bytes by k & 1)
    // and 2 bits of qh (bits 2k, 2k+1) moved to bits 4, 5 by 16-bit shifts (see Shift16).
    const auto m30 = hn::Set(du, 0x30);
    for (int n = 0; n < 2; ++n) {
      const auto l0 = hn::LoadU(du, b + 64 * n), l1 = hn::LoadU(du, b + 64 * n + 32);
      const auto hb = hn::LoadU(du, b + 128 + 32 * n);
      pair(hn::Or(hn::And(l0, m4), hn::And(Shift16<4>(hb), m30)),
           hn::Or(hn::And(l1, m4), hn::And(Shift16<2>(hb), m30)), 2 * n);
      pair(hn::Or(hn::ShiftRight<4>(l0), hn::And(hb, m30)),
           hn::Or(hn::ShiftRight<4>(l1), hn::And(Shift16<-2>(hb), m30)), 2 * n + 1);
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      const VF offs = hn::MulAdd(wo[1], hn::LoadU(df, ab.s + 8), hn::Mul(wo[0], hn::LoadU(df, ab.s)));
      const VF da = hn::Mul(hn::Set(df, d), hn::LoadU(df, ab.d));  // d * da_j
      acc0[t] = hn::Add(acc0[t], hn::MulSub(hn::ConvertTo(df, Sum8(hsum[t][0], hsum[t][1])), da, offs));
    }
#else
    // q[j][v]: sub-block j of 32 (elements 32j + v*kVB ... + kVB), unsigned 6-bit quants.
    const auto m2 = hn::Set(du, 3);
    VU8 q[8][kPerBlock];
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = b + 64 * n;
      const uint8_t* qh = b + 128 + 32 * n;
      for (int v = 0; v < kPerBlock; ++v) {
        const auto l0 = hn::LoadU(du, ql + v * kVB), l1 = hn::LoadU(du, ql + 32 + v * kVB);
        const auto hb = hn::LoadU(du, qh + v * kVB);
        q[4 * n][v] = hn::Or(hn::And(l0, m4), hn::ShiftLeft<4>(hn::And(hb, m2)));
        q[4 * n + 1][v] = hn::Or(hn::And(l1, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), m2)));
        q[4 * n + 2][v] = hn::Or(hn::ShiftRight<4>(l0), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), m2)));
        q[4 * n + 3][v] = hn::Or(hn::ShiftRight<4>(l1), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb)));
      }
    }
    for (int t = 0; t < NT; ++t) {
      const BlockQ8_KA& ab = a[t][ib];
      const uint8_t* aq = reinterpret_cast<const uint8_t*>(ab.qs);
      VF offs = hn::Mul(wo[0], hn::LoadU(df, ab.s));
      for (int v = 1; v < 16 / kNF; ++v) offs = hn::MulAdd(wo[v], hn::LoadU(df, ab.s + v * kNF), offs);
      alignas(64) float da[8];  // d * da_j, read back as broadcasts
      for (int v = 0; v < 8 / kNF; ++v)
        hn::Store(hn::Mul(hn::Set(df, d), hn::LoadU(df, ab.d + v * kNF)), df, da + v * kNF);
      for (int j = 0; j < 8; ++j) {
        // The 16-element weight scales stay integer (madd); s_hi is used by 256-bit vectors only.
        VI32 s = DotU8I8(q[j][0], hn::LoadU(du, aq + 32 * j), sc[2 * j], sc[2 * j + 1]);
        for (int v = 1; v < kPerBlock; ++v)
          s = hn::Add(s, DotU8I8(q[j][v], hn::LoadU(du, aq + 32 * j + v * kVB), sc[2 * j + v], sc[2 * j + v]));
        VF& acc = (j & 1) ? acc1[t] : acc0[t];
        acc = hn::MulAdd(hn::ConvertTo(df, s), hn::Set(df, da[j]), acc);
      }
      acc1[t] = hn::Sub(acc1[t], offs);
    }
#endif
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[t], acc1[t])));
}

#endif  // HWY_TARGET != HWY_SCALAR

// ---- activation quantization ----
// Q8_KA: one scale per 32 elements, d = amax/127 and round-to-nearest-even (the same rounding
// as QuantizeQ8A, so both encodings of a row hold the same int8 values).
void QuantizeQ8KA(const float* x, int64_t n, BlockQ8_KA* out) {
  for (int64_t ib = 0; ib < n / 256; ++ib) {
    BlockQ8_KA& o = out[ib];
    for (int j = 0; j < 8; ++j) {
      const Q8Block32 b = QuantizeBlock32(x + 256 * ib + 32 * j, o.qs + 32 * j);
      o.d[j] = b.d;
      o.s[2 * j] = b.d * static_cast<float>(b.sum_lo);
      o.s[2 * j + 1] = b.d * static_cast<float>(b.sum_hi);
      o.o16[2 * j] = -32 * b.sum_lo;
      o.o16[2 * j + 1] = -32 * b.sum_hi;
      o.s32[j] = o.s[2 * j] + o.s[2 * j + 1];
    }
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
