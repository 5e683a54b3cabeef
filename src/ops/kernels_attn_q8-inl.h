// Scores of a group of query heads over Q8_0 keys with AVX-512 VNNI (vpdpbusd), one copy per
// Highway target (included via foreach_target); only the AVX3 target has it (ops.cpp falls back
// to the fp32 kernel elsewhere, when the CPU lacks VNNI, and in exact mode).
//
// Why: the fp32 kernel widens every key to fp32 and ends each score with a horizontal sum; at
// 16K positions that arithmetic, not the memory traffic, bounded decode. Here the query heads
// are quantized to int8 once per call (two parts, see QueryQ8), and 16 keys at a
// time are transposed in registers so that one 64-byte vector holds 4 consecutive quants of 16
// keys: a query's 4 bytes are one 32-bit broadcast and vpdpbusd adds 64 products into the 16
// keys' int32 lanes. No widening of keys and no horizontal sums.
//
// Signedness: vpdpbusd multiplies unsigned by signed bytes. Keys are flipped to k + 128
// (xor 0x80, exact for every int8) and -128 times the per-block sum of the query's quants
// is added, so the int32 result is the exact signed dot product.
#if defined(EDGELLM_OPS_ATTN_Q8_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTN_Q8_INL_H_
#undef EDGELLM_OPS_ATTN_Q8_INL_H_
#else
#define EDGELLM_OPS_ATTN_Q8_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hwy/highway.h"
#include "ops/attn_prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

// The query heads in two int8 parts per block of 32: q ~ d * (q1 + q2 / 256), q1 = round(x / d)
// with d = max|x| / 127, q2 = round((x - d * q1) * 256 / d) (rounding to nearest even,
// clamped to +-127). With q1 alone (llama.cpp's q8_0 query) the mean KL of Qwen2.5-0.5B with a
// q8_0 cache against an f32 cache rose by a third: its query blocks have outlier channels
// that leave the others few levels. The second part costs 8 more vpdpbusd per head and block.
// corr: -128 * (256 * sum(q1) + sum(q2)) (keys are read as k + 128, see above). The scalar
// reference in tests/unit/ops/attention_kv_test.cpp computes the same bits.
struct QueryQ8 {
  std::vector<int8_t> q1, q2;
  std::vector<float> d;  // d / 256: the scale of 256 * q1 + q2
  std::vector<int32_t> corr;
  QueryQ8(const float* q, int64_t nq, int64_t hd)
      : q1(nq * hd), q2(nq * hd), d(nq * hd / 32), corr(nq * hd / 32) {
    auto round127 = [](float r) { return static_cast<int8_t>(std::min(127.f, std::max(-127.f, std::nearbyint(r)))); };
    for (int64_t b = 0; b < nq * hd / 32; ++b) {
      const float* x = q + 32 * b;
      float amax = 0.f;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float db = amax / 127.f, id = db != 0.f ? 1.f / db : 0.f;
      int32_t s1 = 0, s2 = 0;
      for (int i = 0; i < 32; ++i) {
        const int8_t a = round127(x[i] * id);
        const int8_t c = round127(std::fma(-db, static_cast<float>(a), x[i]) * (256.f * id));
        q1[32 * b + i] = a, q2[32 * b + i] = c;
        s1 += a, s2 += c;
      }
      d[b] = db / 256.f;
      corr[b] = -128 * (256 * s1 + s2);
    }
  }
};

#if HWY_TARGET == HWY_AVX3
#define EDGELLM_ATTN_Q8_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c")))

// 16 keys (q8_0 rows of nb blocks at base + j * stride) x heads [g0, g0 + H) of qq:
// out[g * out_stride + j] = sum over blocks of dk * dq * (q_g . k_j). H is a template argument
// so that the heads' accumulators stay in registers (indexed by a run-time head they lived on
// the stack: a store and a load per head and block).
// S > 0: the row stride is S bytes, known at compile time (the cache's rows are contiguous:
// stride = 34 nb), so the 16 rows' addresses are displacements from one register; with a run-time
// stride GCC kept row addresses on the stack and reloaded them after the key loads (one head at
// d16384: 4-7% faster without them). S = 0: stride as given.
template <int H, int S>
EDGELLM_ATTN_Q8_VNNI HWY_NOINLINE void Q8Scores16(const QueryQ8& qq, int64_t g0, int64_t nb_arg, const uint8_t* base,
                                                  int32_t stride_arg, float* out, int64_t out_stride) {
  const int32_t stride = S > 0 ? S : stride_arg;
  const int64_t nb = S > 0 ? S / 34 : nb_arg;
  // Row offsets in the order the transpose wants (see below) and in natural order (scales).
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(stride));
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  constexpr int kLow[8] = {0, 1, 2, 3, 8, 9, 10, 11}, kHigh[8] = {4, 5, 6, 7, 12, 13, 14, 15};
  __m512 acc[H];
  for (int h = 0; h < H; ++h) acc[h] = _mm512_setzero_ps();
  const uint8_t* ahead = base + AttnPrefetchRows(static_cast<size_t>(stride)) * static_cast<size_t>(stride);
  for (int r = 0; r < 16; ++r) PrefetchRow(ahead + r * static_cast<size_t>(stride), static_cast<size_t>(34 * nb));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = base + 34 * b;
    // z[j] = [key kLow[j] | key kHigh[j]] (32 quants each). An 8 x 8 dword transpose in each
    // 256-bit half, then 128-bit lanes regrouped: k[s] holds quants 4s..4s+3 of keys 0..15 in
    // order (kLow / kHigh are chosen so that the regrouping leaves them in order).
    __m512i z[8];
    for (int j = 0; j < 8; ++j) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kLow[j] * stride + 2));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kHigh[j] * stride + 2));
      z[j] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
    }
    __m512i t[8], u[8], k[8];
    for (int j = 0; j < 8; j += 2) {
      t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
      t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
      u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);      // quants 0, 4 (dwords)
      u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);  // 1, 5
      u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);  // 2, 6
      u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);  // 3, 7
    }
    for (int s = 0; s < 4; ++s) {
      k[s] = _mm512_shuffle_i32x4(u[s], u[s + 4], 0x88);
      k[s + 4] = _mm512_shuffle_i32x4(u[s], u[s + 4], 0xDD);
    }
    // The 16 keys' block scales: 4 bytes gathered from each block start, the low fp16 kept.
    const __m512i sc = _mm512_i32gather_epi32(idx, blk, 1);
    const __m512 dk = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(sc));
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      const int64_t g = g0 + h;
      // 256 * (q1 . (k + 128)) + q2 . (k + 128) + corr = 256 * q1 . k + q2 . k; under 2^28.
      const int8_t* p1 = qq.q1.data() + (g * nb + b) * 32;
      const int8_t* p2 = qq.q2.data() + (g * nb + b) * 32;
      __m512i a = _mm512_setzero_si512(), a2 = _mm512_set1_epi32(qq.corr[g * nb + b]);
      // The query's 4 bytes are the instruction's broadcast memory operand ({1to16}); from the
      // intrinsics GCC emits a separate vpbroadcastd per product.
      using A32 = int32_t __attribute__((may_alias));
      for (int s = 0; s < 8; ++s) {
        asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(a) : "v"(k[s]), "m"(*reinterpret_cast<const A32*>(p1 + 4 * s)));
        asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(a2) : "v"(k[s]), "m"(*reinterpret_cast<const A32*>(p2 + 4 * s)));
      }
      a = _mm512_add_epi32(_mm512_slli_epi32(a, 8), a2);
      const __m512 f = _mm512_mul_ps(dk, _mm512_set1_ps(qq.d[g * nb + b]));
      acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), f, acc[h]);
    }
  }
  for (int h = 0; h < H; ++h) _mm512_storeu_ps(out + (g0 + h) * out_stride, acc[h]);
}

// Q8Scores16 for all nq heads, 8 at a time (each group transposes the keys again).
template <int S>
HWY_INLINE void Q8Scores16AllS(const QueryQ8& qq, int64_t nq, int64_t nb, const uint8_t* base, int32_t stride,
                               float* out, int64_t out_stride) {
  for (int64_t g0 = 0; g0 < nq; g0 += 8) {
    switch (std::min<int64_t>(8, nq - g0)) {
      case 1: Q8Scores16<1, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 2: Q8Scores16<2, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 3: Q8Scores16<3, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 4: Q8Scores16<4, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 5: Q8Scores16<5, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 6: Q8Scores16<6, S>(qq, g0, nb, base, stride, out, out_stride); break;
      case 7: Q8Scores16<7, S>(qq, g0, nb, base, stride, out, out_stride); break;
      default: Q8Scores16<8, S>(qq, g0, nb, base, stride, out, out_stride); break;
    }
  }
}

// Contiguous rows of head_dim 128 or 64 (stride 136 / 68) take the compile-time stride.
HWY_INLINE void Q8Scores16All(const QueryQ8& qq, int64_t nq, int64_t nb, const uint8_t* base, int32_t stride,
                              float* out, int64_t out_stride) {
  if (stride == 34 * 4 && nb == 4) return Q8Scores16AllS<34 * 4>(qq, nq, nb, base, stride, out, out_stride);
  if (stride == 34 * 2 && nb == 2) return Q8Scores16AllS<34 * 2>(qq, nq, nb, base, stride, out, out_stride);
  Q8Scores16AllS<0>(qq, nq, nb, base, stride, out, out_stride);
}

// scores[g * n + j] = q_g . k_j for nq heads (q: nq rows of hd floats) over n q8_0 key rows
// (k + j * stride bytes); hd % 32 == 0.
HWY_INLINE void GroupScoresQ8Vnni(const float* q, int64_t nq, const uint8_t* k, size_t stride, int64_t n, int64_t hd,
                                  float* scores) {
  const QueryQ8 qq(q, nq, hd);
  const int64_t nb = hd / 32;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    Q8Scores16All(qq, nq, nb, k + j * stride, static_cast<int32_t>(stride), scores + j, n);
  if (j == n) return;
  // The last n - j keys: copied after zero rows (scale 0, so their scores are 0 and unused).
  const size_t rb = static_cast<size_t>(34 * nb);
  std::vector<uint8_t> rows(16 * rb, 0);
  for (int64_t r = 0; r < n - j; ++r) std::memcpy(&rows[r * rb], k + (j + r) * stride, rb);
  std::vector<float> tail(nq * 16);
  Q8Scores16All(qq, nq, nb, rows.data(), static_cast<int32_t>(rb), tail.data(), 16);
  for (int64_t g = 0; g < nq; ++g) std::copy_n(&tail[g * 16], n - j, scores + g * n + j);
}
#undef EDGELLM_ATTN_Q8_VNNI
#endif  // HWY_TARGET == HWY_AVX3

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
