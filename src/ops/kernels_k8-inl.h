// Kernels for Q4_K / Q6_K weights in the K8 layout (ops/pack_k8.h): eight rows interleaved per
// super-block. One copy per Highway target (included via foreach_target). On x86 with 256-bit
// integer vectors (AVX2, AVX3) a native kernel; elsewhere each group of eight rows is unpacked
// to GGUF rows and run through the target's row kernels (correct, not fast: repacking is only
// chosen where the native kernel exists, see ops::repack_preferred).
#if defined(EDGELLM_OPS_K8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_K8_INL_H_
#undef EDGELLM_OPS_K8_INL_H_
#else
#define EDGELLM_OPS_K8_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "hwy/highway.h"
#include "ops/kernels_gemv-inl.h"
#include "ops/ops.h"
#include "ops/pack_k8.h"
#include "ops/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

// Any target: unpack each group of eight rows, then the row-major kernel on those rows.
template <class Kern, io::TensorType kType>
void GemvK8Unpacked(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                    size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  constexpr int R = k8::kRows;
  const size_t gb = k8::group_bytes(kType, n_in);
  thread_local std::vector<uint8_t> rows;
  rows.resize(R * row_stride);
  for (int64_t g = r0 / R; R * g < r1; ++g) {
    k8::unpack_group(kType, w + static_cast<size_t>(g) * gb, n_in, rows.data());
    const int64_t lo = std::max(r0, R * g) - R * g, hi = std::min(r1, R * g + R) - R * g;
    Gemv<Kern>(rows.data(), row_stride, n_in, lo, hi, act, act_stride, n_tok, y + R * g, ldy);
  }
}

#if EDGELLM_X86_256
// One group (8 rows) x nt tokens: out[8 t + r] (out starts zeroed). Per sub-block of 32 the
// weights are unpacked once into 8 registers (4 elements x 8 rows each: low and high nibbles of
// 4 vectors, Q6_K with its high bits ORed in), then every token of the tile reuses them: 8
// maddubs with 4-byte broadcasts of its activations, so the int32 lanes after madd are the 8
// rows and the madd's second operand is the rows' sub-block scale. Unpacking once per sub-block
// for all tokens (it was once per 4 tokens) is what makes batches of 5-16 tokens cheaper: AVX2
// has no spare multiply or ALU slots to hide it under (tokens are instruction-bound, the
// weights' memory stream is not the limit past ~3 tokens).
// Q4_K: the 8 maddubs are summed as int16 (<= 8 * 2 * 15 * 127 = 30480) before one madd.
// Q6_K: pairs (<= 2 * 2 * 63 * 127 = 32004) and one madd per pair with the 16-element scale.
// Integer sums are exact, so their order is free (pairs of pairs: a short dependency chain).
// Each sub-block's int32 sums go into the float accumulator at once, times the rows' d and the
// token's activation scale of that 32; the offsets (Q4_K: dmin * mn, Q6_K: 32 * d * sc, times
// the activation sums) are FMAs on the accumulator. Every token takes the same float operations
// in the same order whatever nt is, so a token's result does not depend on its batch, and they
// are those of the AVX-512 16-row tile below lane for lane.
// kT = 1..4 tokens: accumulators in registers. kT = 0: nt (5..16) tokens whose accumulators live
// in `out` (L1), which leaves the registers to the unpacked weights; with fewer tokens the chain
// through memory (store, reload, two FMAs per sub-block) would be the critical path.
constexpr int kK8Avx2TileTokens = 16;
template <bool kQ6, int kT>
HWY_INLINE void TileK8(const uint8_t* p, int64_t nb, const BlockQ8_KA* const* a, int nt, float* out, int64_t pf) {
  constexpr int64_t kBB = kQ6 ? 1680 : 1184;
  constexpr int64_t kSc = kQ6 ? 16 : 32, kNib = kQ6 ? 144 : 160, kHigh = 272, kMin = 96;
  constexpr int64_t kJ = kQ6 ? 192 : 128;  // bytes of a sub-block's quants (Q6_K: nibbles, then high bits)
  const __m256i low = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[kT > 0 ? kT : 1];
  for (int t = 0; t < (kT > 0 ? kT : 1); ++t) acc[t] = _mm256_setzero_ps();
  if constexpr (kT == 0)
    for (int t = 0; t < nt; ++t) _mm256_storeu_ps(out + 8 * t, _mm256_setzero_ps());
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * kBB;
    if (pf)
      for (int64_t o = 0; o < kBB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(b + pf + o), _MM_HINT_T0);
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    // Offset weights per 16-element half sub-block, as row vectors: Q4_K dmin * mn, Q6_K 32 * d * sc.
    __m256 wo;
    if constexpr (kQ6)
      wo = _mm256_mul_ps(d8, _mm256_set1_ps(32.f));
    else
      wo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
    __m256i scw = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      // The madd operands: int16 pairs [s s] per row, rows 0-3 in the low 128 bits, 4-7 in the high.
      __m256i sc0, sc1;
      __m256 w0, w1;
      if constexpr (kQ6) {
        const __m256i w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kSc + 16 * j)));
        sc0 = _mm256_unpacklo_epi16(w16, w16), sc1 = _mm256_unpackhi_epi16(w16, w16);
        w0 = _mm256_mul_ps(wo, _mm256_cvtepi32_ps(_mm256_srai_epi32(sc0, 16)));
        w1 = _mm256_mul_ps(wo, _mm256_cvtepi32_ps(_mm256_srai_epi32(sc1, 16)));
      } else {
        if ((j & 1) == 0)
          scw = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kSc + 8 * j)));
        sc0 = sc1 = (j & 1) ? _mm256_unpackhi_epi16(scw, scw) : _mm256_unpacklo_epi16(scw, scw);
        w0 = w1 = _mm256_mul_ps(
            wo, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + kMin + 8 * j)))));
      }
      // The sub-block's 256 weights: lo[q] / hi[q] are elements 8q..8q+3 / 8q+4..8q+7 of each row.
      __m256i lo[4], hi[4];
      const uint8_t* nq = b + kNib + kJ * j;
      for (int q = 0; q < 4; ++q) {
        const __m256i n = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nq + 32 * q));
        lo[q] = _mm256_and_si256(n, low), hi[q] = _mm256_and_si256(_mm256_srli_epi16(n, 4), low);
        if constexpr (kQ6) {
          // Bits 4, 5 of q[j][2q] / q[j][2q+1]: bits 2k, 2k+1 of h[j][q / 2], k = 2q % 4 (+1).
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHigh + kJ * j + 32 * (q / 2)));
          if (q % 2 == 0) {
            lo[q] = _mm256_or_si256(lo[q], _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            hi[q] = _mm256_or_si256(hi[q], _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
          } else {
            lo[q] = _mm256_or_si256(lo[q], _mm256_and_si256(h, m30));
            hi[q] = _mm256_or_si256(hi[q], _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
          }
        }
      }
      auto token = [&](const BlockQ8_KA& ab, __m256 acc) HWY_ATTR {
        const int8_t* aq = ab.qs + 32 * j;
        auto x = [&](int q) HWY_ATTR {
          int32_t a0, a1;
          std::memcpy(&a0, aq + 8 * q, 4);
          std::memcpy(&a1, aq + 8 * q + 4, 4);
          return _mm256_add_epi16(_mm256_maddubs_epi16(lo[q], _mm256_set1_epi32(a0)),
                                  _mm256_maddubs_epi16(hi[q], _mm256_set1_epi32(a1)));
        };
        __m256i i32;
        if constexpr (kQ6)
          i32 = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(x(0), sc0), _mm256_madd_epi16(x(1), sc0)),
                                 _mm256_add_epi32(_mm256_madd_epi16(x(2), sc1), _mm256_madd_epi16(x(3), sc1)));
        else
          i32 = _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(x(0), x(1)), _mm256_add_epi16(x(2), x(3))), sc0);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(d8, _mm256_broadcast_ss(&ab.d[j])), acc);
        if constexpr (kQ6) {
          acc = _mm256_fnmadd_ps(w0, _mm256_broadcast_ss(&ab.s[2 * j]), acc);
          acc = _mm256_fnmadd_ps(w1, _mm256_broadcast_ss(&ab.s[2 * j + 1]), acc);
        } else {
          acc = _mm256_fnmadd_ps(w0, _mm256_broadcast_ss(&ab.s32[j]), acc);  // s32[j] = s[2j] + s[2j+1]
        }
        return acc;
      };
      if constexpr (kT > 0) {
        for (int t = 0; t < kT; ++t) acc[t] = token(a[t][ib], acc[t]);
      } else {
        for (int t = 0; t < nt; ++t)
          _mm256_storeu_ps(out + 8 * t, token(a[t][ib], _mm256_loadu_ps(out + 8 * t)));
      }
    }
  }
  if constexpr (kT > 0)
    for (int t = 0; t < kT; ++t) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

// The same per-token arithmetic with the loops the other way round: each weight vector is
// unpacked and used by the T <= 4 tokens at once, so only one is live. Q6_K takes this tile: its
// weights-stationary form (8 weight vectors, two scale and two offset vectors live) spills on
// AVX2's 16 registers and measured no faster (BM_MatmulCached, 2-64 tokens).
template <bool kQ6, int T>
HWY_INLINE void TileK8PerVector(const uint8_t* p, int64_t nb, const BlockQ8_KA* const* a, float* out, int64_t pf) {
  constexpr int64_t kBB = kQ6 ? 1680 : 1184;
  constexpr int64_t kSc = kQ6 ? 16 : 32, kNib = kQ6 ? 144 : 160, kHigh = 272, kMin = 96;
  constexpr int64_t kJ = kQ6 ? 192 : 128;  // bytes of a sub-block's quants (Q6_K: nibbles, then high bits)
  const __m256i low = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * kBB;
    if (pf)
      for (int64_t o = 0; o < kBB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(b + pf + o), _MM_HINT_T0);
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    // Offset weights per 16-element half sub-block, as row vectors: Q4_K dmin * mn, Q6_K 32 * d * sc.
    __m256 wo = _mm256_setzero_ps();
    if constexpr (!kQ6) wo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
    if constexpr (kQ6) wo = _mm256_mul_ps(d8, _mm256_set1_ps(32.f));
    __m256i scw = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      // The madd operands: int16 pairs [s s] per row, rows 0-3 in the low 128 bits, 4-7 in the high.
      __m256i sc0, sc1;
      if constexpr (kQ6) {
        const __m256i w16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kSc + 16 * j)));
        sc0 = _mm256_unpacklo_epi16(w16, w16), sc1 = _mm256_unpackhi_epi16(w16, w16);
      } else {
        if ((j & 1) == 0)
          scw = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kSc + 8 * j)));
        sc0 = sc1 = (j & 1) ? _mm256_unpackhi_epi16(scw, scw) : _mm256_unpacklo_epi16(scw, scw);
      }
      __m256i s[T];
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
      const uint8_t* nq = b + kNib + kJ * j;
      for (int q = 0; q < 4; ++q) {
        const __m256i n = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nq + 32 * q));
        __m256i lo = _mm256_and_si256(n, low), hi = _mm256_and_si256(_mm256_srli_epi16(n, 4), low);
        if constexpr (kQ6) {
          // Bits 4, 5 of q[j][2q] / q[j][2q+1]: bits 2k, 2k+1 of h[j][q / 2], k = 2q % 4 (+1).
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHigh + kJ * j + 32 * (q / 2)));
          if (q % 2 == 0) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
          } else {
            lo = _mm256_or_si256(lo, _mm256_and_si256(h, m30));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
          }
        }
        for (int t = 0; t < T; ++t) {
          const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + 32 * j + 8 * q;
          int32_t a0, a1;
          std::memcpy(&a0, aq, 4);
          std::memcpy(&a1, aq + 4, 4);
          const __m256i x = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(a0)),
                                             _mm256_maddubs_epi16(hi, _mm256_set1_epi32(a1)));
          if constexpr (kQ6)
            s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(x, q < 2 ? sc0 : sc1));
          else
            s[t] = _mm256_add_epi16(s[t], x);
        }
      }
      // Offsets of the two halves of sub-block j: row weights (wo times the rows' mn_j / sc) per s[].
      __m256 w0, w1;
      if constexpr (kQ6) {
        w0 = _mm256_mul_ps(wo, _mm256_cvtepi32_ps(_mm256_srai_epi32(sc0, 16)));
        w1 = _mm256_mul_ps(wo, _mm256_cvtepi32_ps(_mm256_srai_epi32(sc1, 16)));
      } else {
        w0 = w1 = _mm256_mul_ps(
            wo, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + kMin + 8 * j)))));
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8_KA& ab = a[t][ib];
        const __m256i i32 = kQ6 ? s[t] : _mm256_madd_epi16(s[t], sc0);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(d8, _mm256_set1_ps(ab.d[j])), acc[t]);
        if constexpr (kQ6) {
          acc[t] = _mm256_fnmadd_ps(w0, _mm256_set1_ps(ab.s[2 * j]), acc[t]);
          acc[t] = _mm256_fnmadd_ps(w1, _mm256_set1_ps(ab.s[2 * j + 1]), acc[t]);
        } else {
          acc[t] = _mm256_fnmadd_ps(w0, _mm256_set1_ps(ab.s[2 * j] + ab.s[2 * j + 1]), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + 8 * t, acc[t]);
}

#undef EDGELLM_K8X2
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Helpers of the 16-row tiles below (group A's bytes in the low half of a vector, group B's in the
// high half). Their target is the subset of AVX-512 every caller has, so they inline into the
// Highway AVX3 code and into the VNNI tiles alike.
#define EDGELLM_K8X2_HELPER __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"), always_inline)) inline
EDGELLM_K8X2_HELPER __m512i LoadPair256(const uint8_t* x, const uint8_t* y) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y)), 1);
}
EDGELLM_K8X2_HELPER __m256i LoadPair128(const uint8_t* x, const uint8_t* y) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(y)), 1);
}
EDGELLM_K8X2_HELPER void PrefetchPair(const uint8_t* ba, const uint8_t* bb, int64_t bytes, int64_t pf) {
  for (int64_t o = 0; o < bytes; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(ba + pf + o), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(bb + pf + o), _MM_HINT_T0);
  }
}
// PrefetchPair's lines for sub-block j of 8, into L2: spread over the super-block's sub-blocks
// so that a few prefetches go out between the products. Issued all at once at the super-block's
// start (PrefetchPair, T0) they filled the core's miss buffers and the products waited behind
// them: a pass of 8 tokens from memory took the memory time plus the arithmetic time, no overlap.
// bench_ops BM_MatmulStreamPacked, 8 tokens, 2 threads, GMAC/s (load 10): Q4_K 1536 wide 162 ->
// 230, Q6_K 93 -> 173, 8960 wide 180 -> 220 and 103 -> 168 (T0 spread about as fast, T1 steadier).
template <int64_t kBytes>
EDGELLM_K8X2_HELPER void PrefetchPairPart(const uint8_t* ba, const uint8_t* bb, int64_t pf, int j) {
  constexpr int kLines = static_cast<int>((kBytes + 63) / 64);
  for (int l = j * kLines / 8; l < (j + 1) * kLines / 8; ++l) {
    _mm_prefetch(reinterpret_cast<const char*>(ba + pf + 64 * l), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(bb + pf + 64 * l), _MM_HINT_T1);
  }
}
// Q6_K: ORs the two high bits of each weight (from the 32-byte high-bit vector h, which serves two
// 32-byte nibble vectors: `first` selects bits 0-1/2-3 or 4-5/6-7) into the low and high nibbles.
EDGELLM_K8X2_HELPER void MergeQ6High(__m512i& lo, __m512i& hi, __m512i h, bool first, __m512i m30) {
  if (first) {
    lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(h, 4), m30));
    hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi16(h, 2), m30));
  } else {
    lo = _mm512_or_si512(lo, _mm512_and_si512(h, m30));
    hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_srli_epi16(h, 2), m30));
  }
}
// Q4_K sub-block j of two groups: d * sc_j (f) and dmin * m_j (w) per row. scw holds the scales of
// sub-blocks j and j ^ 1 as int16 (loaded at even j), K8's Q4_K scale and min bytes at 32 and 96.
EDGELLM_K8X2_HELPER void Q4KSubBlockScales(const uint8_t* ba, const uint8_t* bb, int j, __m512 d16, __m512 dmin,
                                           __m512i& scw, __m512& f, __m512& w) {
  if ((j & 1) == 0) scw = _mm512_cvtepu8_epi16(LoadPair128(ba + 32 + 8 * j, bb + 32 + 8 * j));
  f = _mm512_mul_ps(d16, _mm512_cvtepi32_ps(_mm512_srli_epi32(
                             (j & 1) ? _mm512_unpackhi_epi16(scw, scw) : _mm512_unpacklo_epi16(scw, scw), 16)));
  const __m128i mn = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ba + 96 + 8 * j)),
                                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bb + 96 + 8 * j)));
  w = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)));
}
// TileK8 for two groups at once (16 rows), with 512-bit vectors: the low 256 bits hold group A's
// 32 bytes, the high ones group B's, so the activations stay a plain 4-byte broadcast and each
// instruction does twice the work (this CPU kind runs 512-bit integer multiplies at the 256-bit
// rate). Every lane goes through the same operations as in TileK8, so the results are bitwise
// those of two TileK8 calls (the AVX2 targets' kernel); a lone group runs paired with itself.
template <bool kQ6, int T>
HWY_INLINE void TileK8x2(const uint8_t* pa, const uint8_t* pb, int64_t nb, const BlockQ8_KA* const* a, float* out,
                         int64_t pf) {
  constexpr int64_t kBB = kQ6 ? 1680 : 1184;
  constexpr int64_t kSc = kQ6 ? 16 : 32, kNib = kQ6 ? 144 : 160, kHigh = 272, kMin = 96;
  constexpr int64_t kJ = kQ6 ? 192 : 128;  // bytes of a sub-block's quants (Q6_K: nibbles, then high bits)
  const __m512i low = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t *ba = pa + ib * kBB, *bb = pb + ib * kBB;
    if (pf) PrefetchPair(ba, bb, kBB, pf);
    const __m512 d16 = _mm512_cvtph_ps(LoadPair128(ba, bb));
    __m512 wo;
    if constexpr (kQ6)
      wo = _mm512_mul_ps(d16, _mm512_set1_ps(32.f));
    else
      wo = _mm512_cvtph_ps(LoadPair128(ba + 16, bb + 16));
    __m512i scw = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      __m512i sc0, sc1;
      if constexpr (kQ6) {
        const __m512i w16 = _mm512_cvtepi8_epi16(LoadPair128(ba + kSc + 16 * j, bb + kSc + 16 * j));
        sc0 = _mm512_unpacklo_epi16(w16, w16), sc1 = _mm512_unpackhi_epi16(w16, w16);
      } else {
        if ((j & 1) == 0) scw = _mm512_cvtepu8_epi16(LoadPair128(ba + kSc + 8 * j, bb + kSc + 8 * j));
        sc0 = sc1 = (j & 1) ? _mm512_unpackhi_epi16(scw, scw) : _mm512_unpacklo_epi16(scw, scw);
      }
      __m512i s[T];
      for (int t = 0; t < T; ++t) s[t] = _mm512_setzero_si512();
      for (int q = 0; q < 4; ++q) {
        const int64_t o = kNib + kJ * j + 32 * q;
        const __m512i n = LoadPair256(ba + o, bb + o);
        __m512i lo = _mm512_and_si512(n, low), hi = _mm512_and_si512(_mm512_srli_epi16(n, 4), low);
        if constexpr (kQ6) {
          const int64_t oh = kHigh + kJ * j + 32 * (q / 2);
          const __m512i h = LoadPair256(ba + oh, bb + oh);
          MergeQ6High(lo, hi, h, q % 2 == 0, m30);
        }
        for (int t = 0; t < T; ++t) {
          const uint8_t* aq = reinterpret_cast<const uint8_t*>(a[t][ib].qs) + 32 * j + 8 * q;
          int32_t a0, a1;
          std::memcpy(&a0, aq, 4);
          std::memcpy(&a1, aq + 4, 4);
          const __m512i x = _mm512_add_epi16(_mm512_maddubs_epi16(lo, _mm512_set1_epi32(a0)),
                                             _mm512_maddubs_epi16(hi, _mm512_set1_epi32(a1)));
          if constexpr (kQ6)
            s[t] = _mm512_add_epi32(s[t], _mm512_madd_epi16(x, q < 2 ? sc0 : sc1));
          else
            s[t] = _mm512_add_epi16(s[t], x);
        }
      }
      __m512 w0, w1;
      if constexpr (kQ6) {
        w0 = _mm512_mul_ps(wo, _mm512_cvtepi32_ps(_mm512_srai_epi32(sc0, 16)));
        w1 = _mm512_mul_ps(wo, _mm512_cvtepi32_ps(_mm512_srai_epi32(sc1, 16)));
      } else {
        const __m128i mn = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ba + kMin + 8 * j)),
                                              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bb + kMin + 8 * j)));
        w0 = w1 = _mm512_mul_ps(wo, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)));
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8_KA& ab = a[t][ib];
        const __m512i i32 = kQ6 ? s[t] : _mm512_madd_epi16(s[t], sc0);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32), _mm512_mul_ps(d16, _mm512_set1_ps(ab.d[j])), acc[t]);
        if constexpr (kQ6) {
          acc[t] = _mm512_fnmadd_ps(w0, _mm512_set1_ps(ab.s[2 * j]), acc[t]);
          acc[t] = _mm512_fnmadd_ps(w1, _mm512_set1_ps(ab.s[2 * j + 1]), acc[t]);
        } else {
          acc[t] = _mm512_fnmadd_ps(w0, _mm512_set1_ps(ab.s[2 * j] + ab.s[2 * j + 1]), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

// 8 elements of 16 rows (lo: elements 0-3 of each row, hi: 4-7) times a token's 8 int8
// activations at aq, added to s0, or lo's part to s0 and hi's to s1 (two chains for latency).
template <bool kSplit>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"), always_inline)) inline void DotPairVnni(
    __m512i& s0, __m512i& s1, __m512i lo, __m512i hi, const int8_t* aq) {
  // The 4-byte activation broadcast is the instruction's memory operand ({1to16}): from the
  // intrinsics GCC emits a separate vpbroadcastd per product (as in TileK8VnniFew below).
  using A32 = int32_t __attribute__((may_alias));
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s0) : "v"(lo), "m"(*reinterpret_cast<const A32*>(aq)));
  if constexpr (kSplit)
    asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s1) : "v"(hi), "m"(*reinterpret_cast<const A32*>(aq + 4)));
  else
    asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s0) : "v"(hi), "m"(*reinterpret_cast<const A32*>(aq + 4)));
}

// Q4_K with VNNI for up to 8 tokens per tile (prefill). The weights' nibbles are split once per
// tile, so 8 tokens share that work (the non-VNNI tile above shares it by 4), and a sub-block's
// int32 sum goes into the float accumulator at once (its scale d * sc_j * d_a per row and token),
// so no per-super-block float sums are kept: 8 int32 + 8 float accumulators fit the 32 registers.
// Every token takes the same float operations whatever T is (batch invariance); with T <= 2 the
// low and high nibbles run in two int32 chains to hide dpbusd's latency, an exact integer split.
// kStationary: weights-stationary for 9-16 tokens (see the comment after TileQ6KVnniWide).
template <int T, bool kStationary = false>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"), noinline)) void TileQ4KVnniWide(
    const uint8_t* pa, const uint8_t* pb, int64_t nb, const BlockQ8_KA* const* a, float* out, int64_t pf) {
  constexpr int64_t kBB = 1184, kNib = 160;
  constexpr bool kSplit = T <= 2;
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t *ba = pa + ib * kBB, *bb = pb + ib * kBB;
    const __m512 d16 = _mm512_cvtph_ps(LoadPair128(ba, bb));
    const __m512 dmin = _mm512_cvtph_ps(LoadPair128(ba + 16, bb + 16));
    __m512i scw = _mm512_setzero_si512();
    for (int j = 0; j < 8; ++j) {
      if (pf) PrefetchPairPart<kBB>(ba, bb, pf, j);
      __m512 f, w;
      Q4KSubBlockScales(ba, bb, j, d16, dmin, scw, f, w);
      if constexpr (kStationary) {
        __m512i lo[4], hi[4];
        for (int q = 0; q < 4; ++q) {
          const int64_t o = kNib + 128 * j + 32 * q;
          const __m512i n = LoadPair256(ba + o, bb + o);
          lo[q] = _mm512_and_si512(n, low), hi[q] = _mm512_and_si512(_mm512_srli_epi16(n, 4), low);
        }
        for (int t = 0; t < T; ++t) {
          const BlockQ8_KA& ab = a[t][ib];
          const int8_t* aq = ab.qs + 32 * j;
          __m512i s = _mm512_setzero_si512();
          for (int q = 0; q < 4; ++q) DotPairVnni<false>(s, s, lo[q], hi[q], aq + 8 * q);
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(f, _mm512_set1_ps(ab.d[j])),
                                   acc[t]);
          acc[t] = _mm512_fnmadd_ps(w, _mm512_set1_ps(ab.s32[j]), acc[t]);
        }
      } else {
        __m512i s0[T], s1[kSplit ? T : 1];
        for (int t = 0; t < T; ++t) s0[t] = _mm512_setzero_si512();
        if constexpr (kSplit)
          for (int t = 0; t < T; ++t) s1[t] = _mm512_setzero_si512();
        for (int q = 0; q < 4; ++q) {
          const int64_t o = kNib + 128 * j + 32 * q;
          const __m512i n = LoadPair256(ba + o, bb + o);
          const __m512i lo = _mm512_and_si512(n, low), hi = _mm512_and_si512(_mm512_srli_epi16(n, 4), low);
          for (int t = 0; t < T; ++t) {
            DotPairVnni<kSplit>(s0[t], s1[kSplit ? t : 0], lo, hi, a[t][ib].qs + 32 * j + 8 * q);
          }
        }
        for (int t = 0; t < T; ++t) {
          const BlockQ8_KA& ab = a[t][ib];
          __m512i sum = s0[t];
          if constexpr (kSplit) sum = _mm512_add_epi32(sum, s1[t]);
          acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(f, _mm512_set1_ps(ab.d[j])), acc[t]);
          acc[t] = _mm512_fnmadd_ps(w, _mm512_set1_ps(ab.s32[j]), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

// Q6_K with VNNI for up to 8 tokens per tile, as TileQ4KVnniWide: each half of a sub-block (16
// elements per row, its own scale) is summed in int32, starting from the -32 offset times the
// activations' half sum (BlockQ8_KA::o16, so the offset costs no float operation); the two halves
// meet in one float sum per row and token (times d * sc) before the sub-block's activation scale.
template <int T, bool kStationary = false>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"), noinline)) void TileQ6KVnniWide(
    const uint8_t* pa, const uint8_t* pb, int64_t nb, const BlockQ8_KA* const* a, float* out, int64_t pf) {
  constexpr int64_t kBB = 1680, kSc = 16, kNib = 144, kHigh = 272, kJ = 192;
  constexpr bool kSplit = T <= 2;
  const __m512i low = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t *ba = pa + ib * kBB, *bb = pb + ib * kBB;
    const __m512 d16 = _mm512_cvtph_ps(LoadPair128(ba, bb));
    for (int j = 0; j < 8; ++j) {
      if (pf) PrefetchPairPart<kBB>(ba, bb, pf, j);
      const __m512i w16 = _mm512_cvtepi8_epi16(LoadPair128(ba + kSc + 16 * j, bb + kSc + 16 * j));
      if constexpr (kStationary) {
        // d * sc per row for the two halves of sub-block j.
        const __m512 f0 = _mm512_mul_ps(d16, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_unpacklo_epi16(w16, w16), 16)));
        const __m512 f1 = _mm512_mul_ps(d16, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_unpackhi_epi16(w16, w16), 16)));
        __m512i lo[4], hi[4];
        for (int half = 0; half < 2; ++half) {
          const __m512i h = LoadPair256(ba + kHigh + kJ * j + 32 * half, bb + kHigh + kJ * j + 32 * half);
          for (int qq = 0; qq < 2; ++qq) {
            const int q = 2 * half + qq;
            const int64_t o = kNib + kJ * j + 32 * q;
            const __m512i n = LoadPair256(ba + o, bb + o);
            lo[q] = _mm512_and_si512(n, low), hi[q] = _mm512_and_si512(_mm512_srli_epi16(n, 4), low);
            MergeQ6High(lo[q], hi[q], h, qq == 0, m30);
          }
        }
        for (int t = 0; t < T; ++t) {
          const BlockQ8_KA& ab = a[t][ib];
          const int8_t* aq = ab.qs + 32 * j;
          __m512 sf[2];  // per half: the integer sum, starting at -32 times the activations' half sum (exact)
          for (int half = 0; half < 2; ++half) {
            __m512i s = _mm512_set1_epi32(ab.o16[2 * j + half]);
            for (int q = 2 * half; q < 2 * half + 2; ++q) DotPairVnni<false>(s, s, lo[q], hi[q], aq + 8 * q);
            sf[half] = _mm512_cvtepi32_ps(s);
          }
          // d * (sc_a * S_a + sc_b * S_b): the halves share the activation scale.
          const __m512 u = _mm512_fmadd_ps(sf[1], f1, _mm512_mul_ps(sf[0], f0));
          acc[t] = _mm512_fmadd_ps(u, _mm512_set1_ps(ab.d[j]), acc[t]);
        }
      } else {
        __m512 u[T];  // d * (sc_a * S_a + sc_b * S_b) per token: the halves share the activation scale
        for (int half = 0; half < 2; ++half) {
          // d * sc per row for this half of sub-block j.
          const __m512 f = _mm512_mul_ps(
              d16, _mm512_cvtepi32_ps(_mm512_srai_epi32(
                       half ? _mm512_unpackhi_epi16(w16, w16) : _mm512_unpacklo_epi16(w16, w16), 16)));
          const __m512i h = LoadPair256(ba + kHigh + kJ * j + 32 * half, bb + kHigh + kJ * j + 32 * half);
          // The integer sum starts at the -32 offset times the activations' half sum (exact).
          __m512i s0[T], s1[kSplit ? T : 1];
          for (int t = 0; t < T; ++t) s0[t] = _mm512_set1_epi32(a[t][ib].o16[2 * j + half]);
          if constexpr (kSplit)
            for (int t = 0; t < T; ++t) s1[t] = _mm512_setzero_si512();
          for (int qq = 0; qq < 2; ++qq) {
            const int q = 2 * half + qq;
            const int64_t o = kNib + kJ * j + 32 * q;
            const __m512i n = LoadPair256(ba + o, bb + o);
            __m512i lo = _mm512_and_si512(n, low), hi = _mm512_and_si512(_mm512_srli_epi16(n, 4), low);
            MergeQ6High(lo, hi, h, qq == 0, m30);
            for (int t = 0; t < T; ++t) {
              DotPairVnni<kSplit>(s0[t], s1[kSplit ? t : 0], lo, hi, a[t][ib].qs + 32 * j + 8 * q);
            }
          }
          for (int t = 0; t < T; ++t) {
            __m512i sum = s0[t];
            if constexpr (kSplit) sum = _mm512_add_epi32(sum, s1[t]);
            u[t] = half ? _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), f, u[t]) : _mm512_mul_ps(_mm512_cvtepi32_ps(sum), f);
          }
        }
        for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(u[t], _mm512_set1_ps(a[t][ib].d[j]), acc[t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

// One group (8 rows), 1-5 tokens, with 256-bit VNNI: lane for lane the operations of
// TileQ4KVnniWide / TileQ6KVnniWide for each token (so bitwise their results), but the group's
// super-blocks are one linear memory stream. No software prefetch: see GemvK8Native. Each weight
// vector is unpacked once for all T tokens (two int32 chains per token for dpbusd's latency up to
// 4 tokens; from 5 the tokens' chains are enough and one per token leaves registers free).
#define EDGELLM_K8_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
template <bool kQ6, int T>
EDGELLM_K8_VNNI_TARGET __attribute__((noinline)) void TileK8VnniFew(
    const uint8_t* p, int64_t nb, const BlockQ8_KA* const* a, float* out, bool resume = false) {
  constexpr int64_t kBB = kQ6 ? 1680 : 1184, kNib = kQ6 ? 144 : 160, kHigh = 272, kJ = kQ6 ? 192 : 128;
  const __m256i low = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = resume ? _mm256_loadu_ps(out + 8 * t) : _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * kBB;
    const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
    auto nib = [&](int j, int q, __m256i& lo, __m256i& hi) EDGELLM_K8_VNNI_TARGET {
      const __m256i n = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kNib + kJ * j + 32 * q));
      lo = _mm256_and_si256(n, low), hi = _mm256_and_si256(_mm256_srli_epi16(n, 4), low);
    };
    // s0 += lo . a[0..3], s1 += hi . a[4..7] per lane (exact int32 in any order). The 4-byte
    // activation broadcast is the instruction's memory operand ({1to8}); GCC emits a separate
    // vpbroadcastd per product from the intrinsics (in L2, 2-4 tokens: 3-7% less CPU time).
    using A32 = int32_t __attribute__((may_alias));
    auto dot = [&](__m256i& s0, __m256i& s1, __m256i lo, __m256i hi, const int8_t* aq) EDGELLM_K8_VNNI_TARGET {
      asm("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(s0) : "v"(lo), "m"(*reinterpret_cast<const A32*>(aq)));
      if constexpr (T <= 4)
        asm("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(s1) : "v"(hi), "m"(*reinterpret_cast<const A32*>(aq + 4)));
      else
        asm("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(s0) : "v"(hi), "m"(*reinterpret_cast<const A32*>(aq + 4)));
    };
    if constexpr (kQ6) {
      for (int j = 0; j < 8; ++j) {
        const __m256i w16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 + 16 * j)));
        __m256 u[T];
        for (int half = 0; half < 2; ++half) {
          const __m256 f = _mm256_mul_ps(
              d8, _mm256_cvtepi32_ps(_mm256_srai_epi32(
                      half ? _mm256_unpackhi_epi16(w16, w16) : _mm256_unpacklo_epi16(w16, w16), 16)));
          const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHigh + kJ * j + 32 * half));
          __m256i s0[T], s1[T];
          for (int t = 0; t < T; ++t) s0[t] = _mm256_set1_epi32(a[t][ib].o16[2 * j + half]), s1[t] = _mm256_setzero_si256();
          for (int qq = 0; qq < 2; ++qq) {
            const int q = 2 * half + qq;
            __m256i lo, hi;
            nib(j, q, lo, hi);
            if (qq == 0) {
              lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
              hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            } else {
              lo = _mm256_or_si256(lo, _mm256_and_si256(h, m30));
              hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            }
            for (int t = 0; t < T; ++t) dot(s0[t], s1[t], lo, hi, a[t][ib].qs + 32 * j + 8 * q);
          }
          for (int t = 0; t < T; ++t) {
            const __m256 sf = _mm256_cvtepi32_ps(_mm256_add_epi32(s0[t], s1[t]));
            u[t] = half ? _mm256_fmadd_ps(sf, f, u[t]) : _mm256_mul_ps(sf, f);
          }
        }
        for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(u[t], _mm256_set1_ps(a[t][ib].d[j]), acc[t]);
      }
    } else {
      const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
      __m256i scw = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        if ((j & 1) == 0)
          scw = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 + 8 * j)));
        const __m256i sc = (j & 1) ? _mm256_unpackhi_epi16(scw, scw) : _mm256_unpacklo_epi16(scw, scw);
        const __m256 f = _mm256_mul_ps(d8, _mm256_cvtepi32_ps(_mm256_srli_epi32(sc, 16)));
        const __m128i mn = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 96 + 8 * j));
        const __m256 w = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)));
        __m256i s0[T], s1[T];
        for (int t = 0; t < T; ++t) s0[t] = _mm256_setzero_si256(), s1[t] = _mm256_setzero_si256();
        for (int q = 0; q < 4; ++q) {
          __m256i lo, hi;
          nib(j, q, lo, hi);
          for (int t = 0; t < T; ++t) dot(s0[t], s1[t], lo, hi, a[t][ib].qs + 32 * j + 8 * q);
        }
        for (int t = 0; t < T; ++t) {
          const BlockQ8_KA& ab = a[t][ib];
          const __m256 sf = _mm256_cvtepi32_ps(_mm256_add_epi32(s0[t], s1[t]));
          acc[t] = _mm256_fmadd_ps(sf, _mm256_mul_ps(f, _mm256_set1_ps(ab.d[j])), acc[t]);
          acc[t] = _mm256_fnmadd_ps(w, _mm256_set1_ps(ab.s32[j]), acc[t]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + 8 * t, acc[t]);
}
#undef EDGELLM_K8_VNNI_TARGET

// TileQ4KVnniWide<T, true> and TileQ6KVnniWide<T, true>: the VNNI tiles with the loops turned round, for 9-16 tokens (speculative verification
// passes of 9-16 tokens, batched decode, prefill): each sub-block's 8 weight vectors (16 rows x 32
// elements, low and high nibbles; Q6_K with its high bits merged) are unpacked once and stay in
// registers while every token of the tile passes, so a pass of 9-16 tokens no longer splits into
// two tiles that each unpack the weights (a lone 9th token cost a whole unpack). 8 weight vectors
// and 16 float accumulators fit the 32 registers because a token's int32 sum lives only while that
// token is processed (one dpbusd chain per token: the other tokens' chains hide its latency).
// Integer sums are exact in any order, and each token takes the float operations of
// TileQ4KVnniWide / TileQ6KVnniWide in the same order, so results are bitwise those tiles'
// (batch invariance across both kinds of tile). At 1-8 tokens the per-vector tiles measured faster.
#undef EDGELLM_K8X2_HELPER
#define EDGELLM_K8X2 1
#else
#define EDGELLM_K8X2 0
#endif

// f(std::integral_constant<int, nt>) for kLo <= nt <= kHi (nt < kLo runs kLo): a switch over the
// compile-time tile widths.
template <int kHi, int kLo, class F>
HWY_INLINE void ForTileWidth(int nt, const F& f) {
  if constexpr (kHi > kLo) {
    if (nt < kHi) return ForTileWidth<kHi - 1, kLo>(nt, f);
  }
  f(std::integral_constant<int, kHi>{});
}

// Copies a tile's outputs (out: nt tokens x `stride` rows from row R g) into y's rows [r0, r1).
HWY_INLINE void StoreK8Tile(const float* out, int nt, int stride, int64_t g, int ng, int64_t r0, int64_t r1,
                            float* y, int64_t ldy) {
  constexpr int R = k8::kRows;
  const int64_t lo = std::max(r0, R * g), hi = std::min(r1, R * (g + ng));
  // Whole tiles as fixed-size copies (the loop below became a memmove call per token: 3% of prefill).
  if (lo == R * g && hi - lo == stride) {
    for (int k = 0; k < nt; ++k) {
      if (stride == 2 * R)
        std::memcpy(y + k * ldy + lo, out + stride * k, 2 * R * sizeof(float));
      else
        std::memcpy(y + k * ldy + lo, out + stride * k, R * sizeof(float));
    }
  } else {
    for (int k = 0; k < nt; ++k)
      for (int64_t r = lo; r < hi; ++r) y[k * ldy + r] = out[stride * k + (r - R * g)];
  }
}

// Rows whose tokens' activations take more than L1 are cut into blocks of about 8 KiB of
// activations (GemvK8VnniBlocked). EDGELLM_K8_BLOCK=0 turns the blocking off (A/B).
constexpr int64_t kK8L1Bytes = 32768;
inline int64_t K8ActBudget() {
  static const int64_t v = [] {
    const char* e = std::getenv("EDGELLM_K8_BLOCK");
    return e && std::string(e) == "0" ? int64_t{0} : int64_t{8192};
  }();
  return v;
}

#if EDGELLM_K8X2
// Rows of many super-blocks (the 1.5B's ffn_down: 8960 elements, 35 super-blocks) with VNNI: the
// tokens' activations of a whole row (nt x 416 bytes per super-block: 58 KiB for 4 tokens) no
// longer fit L1, and every group of 8 rows read them again from L2 while the weight stream evicted
// them. Here the row is cut into blocks of kb super-blocks whose activations fit L1 (K8ActBudget)
// and every group of the share takes one block before the next: each tile resumes from the float
// accumulators the previous block left in acc, so every (row, token) takes the same float
// operations in the same order as the unblocked tiles (bitwise their results).
// 2-5 tokens (the one-group tiles: short verification passes, 4-sequence decode). 6-8 tokens
// (paired tiles) blocked as well measured 5-10% slower in a second session (8960 wide, 1 thread;
// 2 super-blocks per block at 8 tokens), after +0-25% in the first: left unblocked.
template <bool kQ6>
void GemvK8VnniBlocked(const uint8_t* w, size_t gb, int64_t nb, int64_t kb, int64_t g0, int64_t g1, int64_t r0,
                       int64_t r1, const BlockQ8_KA* const* ap, int nt, float* y, int64_t ldy) {
  constexpr int64_t kBB = kQ6 ? 1680 : 1184;
  constexpr int R = k8::kRows;
  // One slot of nt x 8 floats (at most 5 x 8) per group: the accumulators between blocks.
  thread_local std::vector<float> acc;
  acc.resize(static_cast<size_t>(g1 - g0) * 8 * R);
  for (int64_t ib0 = 0; ib0 < nb; ib0 += kb) {
    const int64_t nbk = std::min(kb, nb - ib0);
    const bool resume = ib0 > 0;
    const BlockQ8_KA* a[16];
    for (int k = 0; k < nt; ++k) a[k] = ap[k] + ib0;
    for (int64_t g = g0; g < g1; ++g) {
      const uint8_t* p = w + static_cast<size_t>(g) * gb + ib0 * kBB;
      float* out = acc.data() + static_cast<size_t>(g - g0) * 8 * R;
      ForTileWidth<5, 2>(nt, [&](auto n) { TileK8VnniFew<kQ6, n.value>(p, nbk, a, out, resume); });
    }
  }
  for (int64_t g = g0; g < g1; ++g)
    StoreK8Tile(acc.data() + static_cast<size_t>(g - g0) * 8 * R, nt, R, g, 1, r0, r1, y, ldy);
}
#endif

template <bool kQ6>
void GemvK8Native(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                  size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  (void)row_stride;
  constexpr int R = k8::kRows;
  const int64_t nb = n_in / 256;
  const size_t gb = k8::group_bytes(kQ6 ? io::TensorType::Q6_K : io::TensorType::Q4_K, n_in);
  const int64_t g0 = r0 / R, g1 = (r1 + R - 1) / R;
  // Tiles of 2 or more tokens: about 4 KiB ahead of the stream in software. Token groups after
  // the first find the chunk's weights in cache (matmul hands out chunks of ~256 KiB).
  const int64_t pf = 4096;
#if EDGELLM_K8X2
  // A pair of groups is read as two streams gb apart. With short groups, 4 KiB past each stream
  // leaves the head of group B uncovered (the previous pair's prefetches end near A's head), so
  // B's first blocks arrived on demand; one pair ahead (2 gb, up to about three quarters of L1)
  // covers both streams of the next pair.
  const int64_t pair_pf = 2 * static_cast<int64_t>(gb) <= 24576 ? 2 * static_cast<int64_t>(gb) : pf;
  const bool vnni = use_vnni();
  // 8 tokens per 512-bit tile (16 int32 + float accumulators in 32 registers); with VNNI 16, the
  // weights-stationary tiles taking 9-16 tokens in one pass over the weights.
  const int64_t tile_tokens = vnni ? 16 : 8;
#else
  // 16 per 256-bit tile: the accumulators are in L1, so the tile width is not bound by registers;
  // 16 tokens' activations of one super-block (7 KiB) stay in L1 while the weights are reused.
  const int64_t tile_tokens = kQ6 ? 4 : kK8Avx2TileTokens;
#endif
  for (int64_t t0 = 0; t0 < n_tok; t0 += tile_tokens) {
    const int nt = static_cast<int>(std::min<int64_t>(tile_tokens, n_tok - t0));
    const BlockQ8_KA* ap[16];
    for (int k = 0; k < nt; ++k) ap[k] = reinterpret_cast<const BlockQ8_KA*>(act + (t0 + k) * act_stride);
#if EDGELLM_K8X2
    // Only where the tokens' activations of a whole row outgrow L1 (1536-wide rows at 4 tokens
    // cut into blocks streamed at a third of the rate: the one linear stream per thread is lost).
    const int64_t act_row = nt * nb * static_cast<int64_t>(sizeof(BlockQ8_KA));
    if (vnni && nt > 1 && nt <= 5 && K8ActBudget() > 0 && act_row > kK8L1Bytes) {
      const int64_t kb = std::max<int64_t>(1, K8ActBudget() / (nt * static_cast<int64_t>(sizeof(BlockQ8_KA))));
      if (kb < nb) {
        GemvK8VnniBlocked<kQ6>(w, gb, nb, kb, g0, g1, r0, r1, ap, nt, y + t0 * ldy, ldy);
        continue;
      }
    }
#endif
    for (int64_t g = g0; g < g1;) {
      const uint8_t* p = w + static_cast<size_t>(g) * gb;
      float out[16 * 16];
      int ng = 1;        // groups done by this step
      int stride = R;    // out's row stride per token
      if (nt == 1) {
        // One token (decode): one group at a time, 256-bit, without software prefetch, so each
        // thread reads one linear stream that the hardware prefetchers follow (see ops/README.md:
        // the paired 512-bit tile's two streams with software prefetch streamed half as fast).
        // Lane for lane the operations of the tiles below, so results do not depend on the batch.
#if EDGELLM_K8X2
        if (vnni)
          TileK8VnniFew<kQ6, 1>(p, nb, ap, out);
        else
#endif
        if constexpr (kQ6)
          TileK8PerVector<kQ6, 1>(p, nb, ap, out, 0);
        else
          TileK8<kQ6, 1>(p, nb, ap, nt, out, 0);
#if EDGELLM_K8X2
      } else if (vnni && nt <= 5) {
        // 2-5 tokens (speculative verification): also one stream per thread. Streamed from memory
        // (bench_ops BM_MatmulStreamPacked, 2 threads, Zen 4) the paired tiles took 2/3/4 tokens at
        // 16.6/15.6/14.9 GB/s (Q4_K) and 16/14.4/14.1 (Q6_K), this tile at 27/22-25/16-17 and
        // 33/21-23/14-17. With the broadcasts folded into dpbusd (and one int32 chain per token
        // from 5 tokens) it no longer spills up to 8 tokens and equals the paired tiles in L2, but
        // from memory it is faster only at 5 tokens (Q4_K 13.8-14.0 vs 13.0-13.1 GB/s, Q6_K
        // 13.1-13.3 vs 11.5-12.6); 6 about equal, 8 slower (9.0-9.2 vs 11.0-12.2).
        ForTileWidth<5, 2>(nt, [&](auto n) { TileK8VnniFew<kQ6, n.value>(p, nb, ap, out); });
#endif
      } else {
        const int64_t pft = t0 == 0 ? pf : 0;
#if EDGELLM_K8X2
        // Pairs of groups in 512-bit vectors; a lone group too (paired with itself), so every row
        // takes the same float operations whatever the chunk boundaries.
        ng = g + 1 < g1 ? 2 : 1, stride = 2 * R;
        const uint8_t* pb = ng == 2 ? p + gb : p;
        const int64_t pfp = t0 == 0 ? pair_pf : 0;
        (void)pft;
        if (vnni && nt > 8) {
          ForTileWidth<16, 9>(nt, [&](auto n) {
            if constexpr (kQ6)
              TileQ6KVnniWide<n.value, true>(p, pb, nb, ap, out, pfp);
            else
              TileQ4KVnniWide<n.value, true>(p, pb, nb, ap, out, pfp);
          });
        } else if (vnni) {
          ForTileWidth<8, 2>(nt, [&](auto n) {
            if constexpr (kQ6)
              TileQ6KVnniWide<n.value>(p, pb, nb, ap, out, pfp);
            else
              TileQ4KVnniWide<n.value>(p, pb, nb, ap, out, pfp);
          });
        } else {
          ForTileWidth<8, 2>(nt, [&](auto n) { TileK8x2<kQ6, n.value>(p, pb, nb, ap, out, pfp); });
        }
#else
        if constexpr (kQ6) {
          switch (nt) {
            case 4: TileK8PerVector<kQ6, 4>(p, nb, ap, out, pft); break;
            case 3: TileK8PerVector<kQ6, 3>(p, nb, ap, out, pft); break;
            default: TileK8PerVector<kQ6, 2>(p, nb, ap, out, pft); break;
          }
        } else switch (nt) {
          case 2: TileK8<kQ6, 2>(p, nb, ap, nt, out, pft); break;
          case 3: TileK8<kQ6, 3>(p, nb, ap, nt, out, pft); break;
          case 4: TileK8<kQ6, 4>(p, nb, ap, nt, out, pft); break;
          default: TileK8<kQ6, 0>(p, nb, ap, nt, out, pft); break;
        }
#endif
      }
      StoreK8Tile(out, nt, stride, g, ng, r0, r1, y + t0 * ldy, ldy);
      g += ng;
    }
  }
}
#endif  // EDGELLM_X86_256

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
