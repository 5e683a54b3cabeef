// 4-row x T-token tiles for the 32-element formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) on x86
// with 256-bit integer vectors (AVX2, and AVX3 running the same code). One copy per Highway
// target (included via foreach_target); other targets use the one-row DotLegacy.
//
// Why tiles: per (weight block, token) the one-row kernel spends ~7 float/scalar operations
// (convert, scale broadcast, FMA, scalar offset FMA) for 2 integer ones, and ends every
// 576-element row with a horizontal sum. Here the four rows' 8-lane int32 block sums are
// folded into one 4-lane vector (3 hadd + 1 add), so one convert, one FMA with the vector of
// the four rows' scales, and one offset FMA serve four dot products, and a tile ends with a
// plain 4-float store. Each activation block is loaded once per 4 rows, each weight block
// decoded once per T tokens.
#if defined(EDGELLM_OPS_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_TILE_INL_H_
#undef EDGELLM_OPS_TILE_INL_H_
#else
#define EDGELLM_OPS_TILE_INL_H_
#endif

#include "hwy/highway.h"
#include "ops/fp16.h"
#include "ops/kernels_quant-inl.h"
#include "ops/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if EDGELLM_X86_256
// Where a block keeps its scale d (always at 0) and its offset: m (fp16 at kM) or kC * d.
template <class Fmt>
struct LegacyScales;
template <>
struct LegacyScales<FmtQ8_0> {
  static constexpr int kM = -1;
  static constexpr float kC = 0.f;
};
template <>
struct LegacyScales<FmtQ4_0> {
  static constexpr int kM = -1;
  static constexpr float kC = -8.f;
};
template <>
struct LegacyScales<FmtQ4_1> {
  static constexpr int kM = 2;
  static constexpr float kC = 0.f;
};
template <>
struct LegacyScales<FmtQ5_0> {
  static constexpr int kM = -1;
  static constexpr float kC = -16.f;
};
template <>
struct LegacyScales<FmtQ5_1> {
  static constexpr int kM = 2;
  static constexpr float kC = 0.f;
};

// The fp16 values at byte `off` of four rows as 4 floats (one F16C convert for all four).
HWY_INLINE __m128 LoadF16x4(const uint8_t* const* w, int64_t off) {
  const __m128i h = _mm_setr_epi16(static_cast<int16_t>(load_u16(w[0] + off)), static_cast<int16_t>(load_u16(w[1] + off)),
                                   static_cast<int16_t>(load_u16(w[2] + off)), static_cast<int16_t>(load_u16(w[3] + off)),
                                   0, 0, 0, 0);
  return _mm_cvtph_ps(h);
}

// d (fp16 at 0) and m (fp16 at 2) of four rows: one 32-bit load per row, one convert, one
// permute ([d0 m0 d1 m1 ...] -> [d0 d1 d2 d3 | m0 m1 m2 m3]) instead of two 4-lane gathers.
HWY_INLINE void LoadF16Pairs4(const uint8_t* const* w, int64_t off, __m128& d, __m128& m) {
  const __m128i h = _mm_setr_epi32(static_cast<int32_t>(load_u32(w[0] + off)), static_cast<int32_t>(load_u32(w[1] + off)),
                                   static_cast<int32_t>(load_u32(w[2] + off)), static_cast<int32_t>(load_u32(w[3] + off)));
  const __m256 f = _mm256_permutevar8x32_ps(_mm256_cvtph_ps(h), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  d = _mm256_castps256_ps128(f);
  m = _mm256_extractf128_ps(f, 1);
}

// Lane r of the result = sum of the 8 int32 lanes of s[r].
HWY_INLINE __m128i Fold4(const VI32* s) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0].raw, s[1].raw), _mm256_hadd_epi32(s[2].raw, s[3].raw));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// Same for unsigned weights below 32 (4- and 5-bit formats): the maddubs pair sums (at most
// 2 * 31 * 127) of two rows are added as int16 before widening (at most 4 * 31 * 127 < 32767),
// so 2 hadd16 + 2 madd + 1 hadd32 replace 4 madd + 3 hadd32.
HWY_INLINE __m128i DotFold4Small(const VU8* q, __m256i a) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i x = _mm256_hadd_epi16(_mm256_maddubs_epi16(q[0].raw, a), _mm256_maddubs_epi16(q[1].raw, a));
  const __m256i y = _mm256_hadd_epi16(_mm256_maddubs_epi16(q[2].raw, a), _mm256_maddubs_epi16(q[3].raw, a));
  const __m256i h = _mm256_hadd_epi32(_mm256_madd_epi16(x, ones), _mm256_madd_epi16(y, ones));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// out[t * 4 + r] = dot(row w[r], token a[t]) for 4 rows (pointers may repeat for a tail) and
// T tokens, nb blocks each. pf: bytes ahead of each row pointer to prefetch (0: none). Four
// rows advancing together are four interleaved streams, which the hardware prefetcher follows
// worse than the one linear stream of a row-at-a-time kernel (measured 2x slower decode
// without this); prefetching the same offsets a few tiles ahead restores the linear stream.
template <class Fmt, int T>
HWY_INLINE void TileLegacy(const uint8_t* const* w, int64_t nb, const BlockQ8_A* const* a, float* out, int64_t pf) {
  using S = LegacyScales<Fmt>;
  constexpr bool kOff = S::kM >= 0 || S::kC != 0.f;
  const DU8 du;
  __m128 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const int64_t o = ib * static_cast<int64_t>(Fmt::kBytes);
    VU8 q[4];
    float unused_d, unused_c;  // the scalar scales of Fmt::Load are dead code here
    // One prefetch per row per cache line is enough: every other block when two fit in 64 bytes.
    constexpr int64_t kPfMask = 2 * Fmt::kBytes <= 64 ? 1 : 0;
    if (pf && (ib & kPfMask) == 0)
      for (int r = 0; r < 4; ++r) _mm_prefetch(reinterpret_cast<const char*>(w[r] + o + pf), _MM_HINT_T0);
    for (int r = 0; r < 4; ++r) Fmt::Load(w[r] + o, &q[r], unused_d, unused_c);
    __m128 dw, cw = _mm_setzero_ps();
    if constexpr (S::kM == 2) {
      LoadF16Pairs4(w, o, dw, cw);
    } else {
      dw = LoadF16x4(w, o);
      if constexpr (kOff) cw = _mm_mul_ps(dw, _mm_set1_ps(S::kC));
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ8_A& ab = a[t][ib];
      const VU8 av = hn::LoadU(du, reinterpret_cast<const uint8_t*>(ab.qs));
      __m128i folded;
      if constexpr (Fmt::kSigned) {
        VI32 s[4];
        for (int r = 0; r < 4; ++r) s[r] = DotI8I8(q[r], av);
        folded = Fold4(s);
      } else {
        folded = DotFold4Small(q, av.raw);
      }
      // block = dw*da*sum(u*a) + cw*(da*sum(a)), formed off the accumulator's dependency
      // chain (one add per block on it). The same operations in the same order for every T
      // and every row position, so a token's result does not depend on its batch.
      const __m128 dot = _mm_cvtepi32_ps(folded);
      const __m128 scale = _mm_mul_ps(dw, _mm_set1_ps(ab.d));
      const __m128 blk = kOff ? _mm_fmadd_ps(dot, scale, _mm_mul_ps(cw, _mm_set1_ps(ab.s))) : _mm_mul_ps(dot, scale);
      acc[t] = _mm_add_ps(acc[t], blk);
    }
  }
  for (int t = 0; t < T; ++t) _mm_storeu_ps(out + 4 * t, acc[t]);
}
#endif  // EDGELLM_X86_256

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
