// Values of a group of query heads over Q8_0 value rows with AVX-512 VNNI (vpdpbusd), one copy
// per Highway target (included via foreach_target); only the AVX3 target has it (ops.cpp falls
// back to the fp32 kernel elsewhere, when the CPU lacks VNNI, and in exact mode).
//
// Why: the fp32 kernel widened every value row to an fp32 tile (about 40 instructions per
// 128-element row) and then spent 6 heads x 8 FMAs per row: at 16K positions this value pass
// cost more than the VNNI scores. Here the weights w = p_j * d_jb (probability times the row's
// block scale) are quantized to u8 per chunk of kQ8VChunk positions and head (scale: the
// chunk's largest w / 255), 8 rows at a time are transposed in registers so that a 32-bit lane
// holds one element of 4 rows, and vpdpbusd adds 4 rows' products per lane: one instruction per
// 16 elements, 4 rows and head (a quarter of the FMAs), and the rows are never widened.
//
// Error: a weight is off by at most half its chunk's step (chunk max / 510); the output by at
// most sum_j step_j / 2 * |v_j| (before 1 / sum). Per-chunk steps keep the far, small
// probabilities from being rounded against a distant peak. The scalar reference in
// tests/unit/ops/attention_kv_test.cpp computes the same bits from the kernel's probabilities.
// Scales must be >= 0 (quantize_row writes max|x| / 127); a negative one counts as 0.
#if defined(EDGELLM_OPS_ATTN_Q8V_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTN_Q8V_INL_H_
#undef EDGELLM_OPS_ATTN_Q8V_INL_H_
#else
#define EDGELLM_OPS_ATTN_Q8V_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hwy/highway.h"
#include "ops/attention_kv.h"
#include "ops/attn_prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3
#define EDGELLM_ATTN_Q8V_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,f16c")))

// Positions per weight step (a multiple of 16).
constexpr int64_t kQ8VChunk = kQ8ValueChunk;
// Lane p of a block's two accumulators (0..15 the first, 16..31 the second) holds element
// kQ8VLane[p] of the block: the order the 4-row byte transpose leaves (see Q8ValuesBlock).
constexpr int kQ8VLane[32] = {0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23,
                              8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};

// Block b of 8 rows (rows + k * stride, k < 8) x H heads: acc[h][0..2) += the u8 weights w + h *
// w_stride (4 bytes per 4 rows: rows 0-3 at w[0..4), rows 4-7 at w[4..8)) times the rows' int8
// quants.
template <int H>
EDGELLM_ATTN_Q8V_VNNI HWY_INLINE void Q8ValuesRows8(const uint8_t* rows, size_t stride, int64_t b, const uint8_t* w,
                                                    int64_t w_stride, __m512i (*acc)[2]) {
  // x[k] = [row k | row k + 4] (32 quants each); within every 128-bit lane the byte and word
  // unpacks leave dwords of 4 rows; lanes 0-1 of o[] are rows 0-3, lanes 2-3 rows 4-7.
  __m512i x[4];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + k * stride + 34 * b + 2));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + (k + 4) * stride + 34 * b + 2));
    x[k] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  const __m512i t01l = _mm512_unpacklo_epi8(x[0], x[1]), t01h = _mm512_unpackhi_epi8(x[0], x[1]);
  const __m512i t23l = _mm512_unpacklo_epi8(x[2], x[3]), t23h = _mm512_unpackhi_epi8(x[2], x[3]);
  // o0: elements 16L + 0..3 of lane L, o1: + 4..7, o2: + 8..11, o3: + 12..15.
  const __m512i o0 = _mm512_unpacklo_epi16(t01l, t23l), o1 = _mm512_unpackhi_epi16(t01l, t23l);
  const __m512i o2 = _mm512_unpacklo_epi16(t01h, t23h), o3 = _mm512_unpackhi_epi16(t01h, t23h);
  // Lanes regrouped so that one vector holds one group of 4 rows (kQ8VLane's order).
  const __m512i va = _mm512_shuffle_i64x2(o0, o1, 0x44), vb = _mm512_shuffle_i64x2(o2, o3, 0x44);
  const __m512i vc = _mm512_shuffle_i64x2(o0, o1, 0xEE), vd = _mm512_shuffle_i64x2(o2, o3, 0xEE);
  // Unrolled so that acc[h] stays in registers (a loop over h put them on the stack).
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) {
    int32_t w0, w1;
    std::memcpy(&w0, w + h * w_stride, 4);
    std::memcpy(&w1, w + h * w_stride + 4, 4);
    const __m512i b0 = _mm512_set1_epi32(w0), b1 = _mm512_set1_epi32(w1);
    acc[h][0] = _mm512_dpbusd_epi32(acc[h][0], b0, va);
    acc[h][1] = _mm512_dpbusd_epi32(acc[h][1], b0, vb);
    acc[h][0] = _mm512_dpbusd_epi32(acc[h][0], b1, vc);
    acc[h][1] = _mm512_dpbusd_epi32(acc[h][1], b1, vd);
  }
}

// One chunk (ng * 8 rows at rows + j * stride), block b, heads [0, H) of the weights wq (head
// stride wq_head, block stride kQ8VChunk): f[h * f_stride + 32 b + p] += step[h] * sum
// (kQ8VLane order). S > 0: the stride is S bytes, known at compile time (the cache's contiguous
// rows), so row addresses are displacements from one register, not pointers reloaded per group.
template <int H, int S>
EDGELLM_ATTN_Q8V_VNNI HWY_NOINLINE void Q8ValuesBlock(const uint8_t* rows, size_t stride_arg, int64_t ng, int64_t b,
                                                      const uint8_t* wq, int64_t wq_head, const float* step, float* f,
                                                      int64_t f_stride) {
  const size_t stride = S > 0 ? static_cast<size_t>(S) : stride_arg;
  __m512i acc[H][2];
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) acc[h][0] = acc[h][1] = _mm512_setzero_si512();
  for (int64_t g = 0; g < ng; ++g)
    Q8ValuesRows8<H>(rows + 8 * g * stride, stride, b, wq + b * kQ8VChunk + 8 * g, wq_head, acc);
#pragma GCC unroll 8
  for (int h = 0; h < H; ++h) {
    float* o = f + h * f_stride + 32 * b;
    const __m512 s = _mm512_set1_ps(step[h]);
    _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[h][0]), s, _mm512_loadu_ps(o)));
    _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[h][1]), s, _mm512_loadu_ps(o + 16)));
  }
}

// Heads in groups of at most 8 (2 accumulators each: 16 of the 32 registers).
constexpr int64_t kQ8VHeads = 8;

template <int S>
EDGELLM_ATTN_Q8V_VNNI HWY_INLINE void Q8ValuesBlockHeadsS(int64_t nh, const uint8_t* rows, size_t stride, int64_t ng,
                                                          int64_t b, const uint8_t* wq, int64_t wq_head,
                                                          const float* step, float* f, int64_t f_stride) {
  switch (nh) {
    case 1: return Q8ValuesBlock<1, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 2: return Q8ValuesBlock<2, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 3: return Q8ValuesBlock<3, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 4: return Q8ValuesBlock<4, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 5: return Q8ValuesBlock<5, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 6: return Q8ValuesBlock<6, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    case 7: return Q8ValuesBlock<7, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
    default: return Q8ValuesBlock<8, S>(rows, stride, ng, b, wq, wq_head, step, f, f_stride);
  }
}

// Contiguous rows of head_dim 128 or 64 (stride 136 / 68) take the compile-time stride.
EDGELLM_ATTN_Q8V_VNNI HWY_INLINE void Q8ValuesBlockHeads(int64_t nh, const uint8_t* rows, size_t stride, int64_t nb,
                                                         int64_t ng, int64_t b, const uint8_t* wq, int64_t wq_head,
                                                         const float* step, float* f, int64_t f_stride) {
  if (nb == 4 && stride == 34 * 4)
    return Q8ValuesBlockHeadsS<34 * 4>(nh, rows, stride, ng, b, wq, wq_head, step, f, f_stride);
  if (nb == 2 && stride == 34 * 2)
    return Q8ValuesBlockHeadsS<34 * 2>(nh, rows, stride, ng, b, wq, wq_head, step, f, f_stride);
  Q8ValuesBlockHeadsS<0>(nh, rows, stride, ng, b, wq, wq_head, step, f, f_stride);
}

// out[g * hd + e] = sum_{j < n} p[g * ldp + j] * v_j[e] for g < nq over n Q8_0 rows (v + j *
// stride bytes, stride <= 2^26), hd % 32 == 0; p >= 0 (softmax weights, normalised or not).
EDGELLM_ATTN_Q8V_VNNI HWY_NOINLINE void GroupValuesQ8Vnni(const float* p, int64_t nq, int64_t ldp, const uint8_t* v,
                                                        size_t stride, int64_t n, int64_t hd, float* out) {
  const int64_t nb = hd / 32;
  // Per chunk: the weights [nq][nb][kQ8VChunk] as u8, each head's step, the rows' scales.
  std::vector<uint8_t> wq(static_cast<size_t>(nq * nb * kQ8VChunk));
  std::vector<float> step(nq), dsc(static_cast<size_t>(nb * kQ8VChunk)), f(static_cast<size_t>(nq * hd), 0.f);
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int32_t>(stride)));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const size_t ahead = AttnPrefetchRows(stride) * stride;
  const size_t rb = static_cast<size_t>(34 * nb);
  std::vector<uint8_t> tail;
  for (int64_t j0 = 0; j0 < n; j0 += kQ8VChunk) {
    const int64_t r = std::min(kQ8VChunk, n - j0);
    const uint8_t* base = v + j0 * stride;
    for (int64_t j = 0; j < r; ++j) PrefetchRow(base + j * stride + ahead, rb);
    const int64_t ng = (r + 7) / 8;
    const uint8_t* rows = base;
    size_t rs = stride;
    if (r % 8 != 0) {
      // The last group's rows past n: the rows copied and followed by zero rows (weights 0), so
      // nothing past the cache's end is read.
      tail.assign(static_cast<size_t>(8 * ng) * rb, 0);
      for (int64_t j = 0; j < r; ++j) std::memcpy(&tail[j * rb], base + j * stride, rb);
      rows = tail.data(), rs = rb;
    }
    // The rows' block scales (dsc[b][j]) and their largest per row.
    __m512 dmax[kQ8VChunk / 16];
    __mmask16 live[kQ8VChunk / 16];
    for (int64_t k = 0; k < kQ8VChunk / 16; ++k) {
      live[k] = _mm512_cmplt_epi32_mask(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(16 * k))),
                                        _mm512_set1_epi32(static_cast<int32_t>(r)));
      dmax[k] = _mm512_setzero_ps();
      const uint8_t* b16 = base + 16 * k * stride;
      for (int64_t b = 0; b < nb; ++b) {
        const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live[k], idx, b16 + 34 * b, 1);
        const __m512 d = _mm512_max_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)), _mm512_setzero_ps());
        _mm512_storeu_ps(&dsc[b * kQ8VChunk + 16 * k], d);
        dmax[k] = _mm512_max_ps(dmax[k], d);
      }
    }
    // Per head: step = max_j p_j dmax_j / 255, weights round(p_j * (255 / max) * d_jb).
    for (int64_t g = 0; g < nq; ++g) {
      __m512 e[kQ8VChunk / 16];
      __m512 m = _mm512_setzero_ps();
      for (int64_t k = 0; k < kQ8VChunk / 16; ++k) {
        e[k] = _mm512_maskz_loadu_ps(live[k], p + g * ldp + j0 + 16 * k);
        m = _mm512_max_ps(m, _mm512_mul_ps(e[k], dmax[k]));
      }
      const float mx = _mm512_reduce_max_ps(m);
      step[g] = mx / 255.f;
      const __m512 inv = _mm512_set1_ps(mx > 0.f ? 255.f / mx : 0.f);
      for (int64_t k = 0; k < kQ8VChunk / 16; ++k) {
        const __m512 ei = _mm512_mul_ps(e[k], inv);
        for (int64_t b = 0; b < nb; ++b) {
          const __m512i u = _mm512_cvtps_epi32(_mm512_mul_ps(ei, _mm512_loadu_ps(&dsc[b * kQ8VChunk + 16 * k])));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(&wq[(g * nb + b) * kQ8VChunk + 16 * k]),
                           _mm512_cvtusepi32_epi8(u));
        }
      }
    }
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t g0 = 0; g0 < nq; g0 += kQ8VHeads)
        Q8ValuesBlockHeads(std::min(kQ8VHeads, nq - g0), rows, rs, nb, ng, b, &wq[g0 * nb * kQ8VChunk],
                           nb * kQ8VChunk, &step[g0], &f[g0 * hd], hd);
  }
  for (int64_t g = 0; g < nq; ++g)
    for (int64_t b = 0; b < nb; ++b)
      for (int i = 0; i < 32; ++i) out[g * hd + 32 * b + kQ8VLane[i]] = f[g * hd + 32 * b + i];
}
#undef EDGELLM_ATTN_Q8V_VNNI
#endif  // HWY_TARGET == HWY_AVX3

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
