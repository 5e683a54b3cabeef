// Q8_0 weights x many int8 tokens with AVX-512 VNNI (vpdpbusd), one copy per Highway target
// (included via foreach_target); only the AVX3 target has it (ops/gemm_q8.h falls back to
// ops::matmul elsewhere and when the CPU lacks VNNI).
//
// Why: the X4 and row tiles take 4 tokens per weight pass with 256-bit maddubs + madd; for an
// encoder's 1500 tokens that ran at the rate of fp32 FMAs. Here a panel of 32 weight rows is
// packed so that one 64-byte vector holds 4 consecutive quants of 16 rows; a token's 4
// activation bytes are one 32-bit broadcast, and vpdpbusd adds 64 products into the 16 rows'
// int32 lanes. A tile is 6 tokens x 32 rows: 12 int32 accumulators per 32-element block, then
// per block one convert and one FMA with the rows' scales times the token's scale.
//
// Panel layout (ops/gemm_q8.cpp packs it), per block of 32 elements, 1280 bytes:
//   int32 nws[32]: -128 * sum of the row's 32 quants (activations are stored as q + 128, unsigned)
//   float d[32]:   the rows' block scales
//   8 steps x 2 groups x 64 bytes: step s, group g: rows 16 g .. 16 g + 15, elements 4 s .. 4 s + 3
#if defined(EDGELLM_OPS_Q8GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_Q8GEMM_INL_H_
#undef EDGELLM_OPS_Q8GEMM_INL_H_
#else
#define EDGELLM_OPS_Q8GEMM_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3
constexpr int64_t kQ8PanelBlockBytes = 1280;

#define EDGELLM_Q8G_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

// R tokens x 32 rows over nb blocks. a[r]: token r's unsigned quants (q + 128), ad[r]: its
// per-block scales. out[r][0..32).
template <int R>
EDGELLM_Q8G_VNNI HWY_INLINE void Q8GemmTile(const uint8_t* const* a, const float* const* ad, const uint8_t* panel,
                                            int64_t nb, float* const* out) {
  __m512 f[R][2];
  for (int r = 0; r < R; ++r) f[r][0] = _mm512_setzero_ps(), f[r][1] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = panel + b * kQ8PanelBlockBytes;
    const __m512i nws0 = _mm512_loadu_si512(p), nws1 = _mm512_loadu_si512(p + 64);
    __m512i acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = nws0, acc[r][1] = nws1;
    const uint8_t* q = p + 256;
    for (int s = 0; s < 8; ++s) {
      const __m512i w0 = _mm512_loadu_si512(q + s * 128), w1 = _mm512_loadu_si512(q + s * 128 + 64);
      for (int r = 0; r < R; ++r) {
        int32_t v;
        std::memcpy(&v, a[r] + b * 32 + s * 4, 4);
        const __m512i x = _mm512_set1_epi32(v);
        acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w0);
        acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w1);
      }
    }
    const __m512 d0 = _mm512_loadu_ps(reinterpret_cast<const float*>(p + 128));
    const __m512 d1 = _mm512_loadu_ps(reinterpret_cast<const float*>(p + 192));
    for (int r = 0; r < R; ++r) {
      const __m512 da = _mm512_set1_ps(ad[r][b]);
      f[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][0]), _mm512_mul_ps(d0, da), f[r][0]);
      f[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][1]), _mm512_mul_ps(d1, da), f[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(out[r], f[r][0]);
    _mm512_storeu_ps(out[r] + 16, f[r][1]);
  }
}

template <int R = 6>
EDGELLM_Q8G_VNNI HWY_INLINE void Q8GemmTileAny(int rows, const uint8_t* const* a, const float* const* ad,
                                               const uint8_t* panel, int64_t nb, float* const* out) {
  if constexpr (R == 1) {
    Q8GemmTile<1>(a, ad, panel, nb, out);
  } else {
    if (rows == R)
      Q8GemmTile<R>(a, ad, panel, nb, out);
    else
      Q8GemmTileAny<R - 1>(rows, a, ad, panel, nb, out);
  }
}

// m tokens (quants at act + t * act_stride, block scales at act_d + t * d_stride) x one packed
// panel of nb blocks: y[t * ldy + j] for j < n (n <= 32).
EDGELLM_Q8G_VNNI HWY_NOINLINE void GemmQ8Vnni(const uint8_t* act, size_t act_stride, const float* act_d,
                                              size_t d_stride, const uint8_t* panel, int64_t nb, int64_t m, int64_t n,
                                              float* y, size_t ldy) {
  for (int64_t t0 = 0; t0 < m; t0 += 6) {
    const int rows = static_cast<int>(m - t0 < 6 ? m - t0 : 6);
    const uint8_t* a[6];
    const float* ad[6];
    float tmp[6][32];
    float* o[6];
    for (int r = 0; r < rows; ++r) {
      a[r] = act + (t0 + r) * act_stride;
      ad[r] = act_d + (t0 + r) * d_stride;
      o[r] = n == 32 ? y + (t0 + r) * ldy : tmp[r];
    }
    Q8GemmTileAny(rows, a, ad, panel, nb, o);
    if (n < 32)
      for (int r = 0; r < rows; ++r) std::memcpy(y + (t0 + r) * ldy, tmp[r], static_cast<size_t>(n) * 4);
  }
}
#undef EDGELLM_Q8G_VNNI
#endif  // HWY_TARGET == HWY_AVX3

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
