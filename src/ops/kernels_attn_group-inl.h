// Register tiles of the grouped-query attention (attend_group_kv): the query heads that share
// one KV head against a tile of fp32 rows, one copy per Highway target (included via
// foreach_target from kernels_attention-inl.h). Not for HWY_SCALAR (one lane), which keeps the
// per-head loops there.
//
// Why: at depth the grouped call is arithmetic-bound, not memory-bound: on Qwen2.5-1.5B each
// 136-byte q8_0 row of one KV head costs 6 x 128 multiply-adds for the scores and as many for
// the values. The per-head loops kept 4 dependent FMA chains in flight (half the FMA
// throughput: 2 ports x 4 cycles of latency want 8) and loaded every row vector once per head.
// Here one pass over a vector of rows feeds 2 heads x 4 rows (scores) or 2 heads x 4 vectors
// (values): 8 independent chains, and a row vector is loaded once per pair of heads.
#if defined(EDGELLM_OPS_ATTN_GROUP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTN_GROUP_INL_H_
#undef EDGELLM_OPS_ATTN_GROUP_INL_H_
#else
#define EDGELLM_OPS_ATTN_GROUP_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "ops/fp16.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR
// Rows per score tile and vectors per value tile (both with 2 heads: 8 accumulators).
constexpr int kDotRows = 4, kAxpyVecs = 4;

// out[0..4) = the lane sums of a, b, c, e. On AVX2 a horizontal-add tree (6 instructions for
// 4 sums instead of about 5 per sum).
template <class D>
HWY_INLINE void StoreSums4(D d, hn::Vec<D> a, hn::Vec<D> b, hn::Vec<D> c, hn::Vec<D> e, float* out) {
#if HWY_TARGET == HWY_AVX2
  (void)d;
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a.raw, b.raw), _mm256_hadd_ps(c.raw, e.raw));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
#else
  out[0] = hn::GetLane(hn::SumOfLanes(d, a));
  out[1] = hn::GetLane(hn::SumOfLanes(d, b));
  out[2] = hn::GetLane(hn::SumOfLanes(d, c));
  out[3] = hn::GetLane(hn::SumOfLanes(d, e));
#endif
}

HWY_INLINE const float* FloatRow(const uint8_t* rows, size_t stride, int64_t j) {
  return reinterpret_cast<const float*>(rows + j * stride);
}

// out[h * ldo + r] = q_h . row_r for h < H, r < R: q holds H heads hd floats apart, row r is hd
// floats at rows + r * stride bytes. The elements past the last whole vector are added scalar.
template <int H, int R>
HWY_INLINE void GroupDots(const float* q, int64_t hd, const uint8_t* rows, size_t stride, float* out, int64_t ldo) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t hv = hd - hd % N;
  const float* rp[R];
  for (int r = 0; r < R; ++r) rp[r] = FloatRow(rows, stride, r);
  hn::Vec<decltype(d)> acc[H][R];
  for (int h = 0; h < H; ++h)
    for (int r = 0; r < R; ++r) acc[h][r] = hn::Zero(d);
  for (int64_t i = 0; i < hv; i += N) {
    hn::Vec<decltype(d)> rv[R];
    for (int r = 0; r < R; ++r) rv[r] = hn::LoadU(d, rp[r] + i);
    for (int h = 0; h < H; ++h) {
      const auto qv = hn::LoadU(d, q + h * hd + i);
      for (int r = 0; r < R; ++r) acc[h][r] = hn::MulAdd(qv, rv[r], acc[h][r]);
    }
  }
  for (int h = 0; h < H; ++h) {
    float* o = out + h * ldo;
    if constexpr (R == 4) {
      StoreSums4(d, acc[h][0], acc[h][1], acc[h][2], acc[h][3], o);
    } else {
      for (int r = 0; r < R; ++r) o[r] = hn::GetLane(hn::SumOfLanes(d, acc[h][r]));
    }
    for (int64_t i = hv; i < hd; ++i)
      for (int r = 0; r < R; ++r) o[r] += q[h * hd + i] * load_f32(rp[r] + i);
  }
}

// scores[g * lds + j] = q_g . row_j for g < nq, j < n: heads in pairs (a last one alone), rows
// in fours (the last n % 4 one at a time).
HWY_INLINE void GroupDotsAll(const float* q, int64_t nq, int64_t hd, const uint8_t* rows, size_t stride, int64_t n,
                             float* scores, int64_t lds) {
  for (int64_t g = 0; g < nq; g += 2) {
    const float* qg = q + g * hd;
    float* sg = scores + g * lds;
    const bool pair = g + 1 < nq;
    int64_t j = 0;
    for (; j + kDotRows <= n; j += kDotRows) {
      if (pair) GroupDots<2, kDotRows>(qg, hd, rows + j * stride, stride, sg + j, lds);
      else GroupDots<1, kDotRows>(qg, hd, rows + j * stride, stride, sg + j, lds);
    }
    for (; j < n; ++j) {
      if (pair) GroupDots<2, 1>(qg, hd, rows + j * stride, stride, sg + j, lds);
      else GroupDots<1, 1>(qg, hd, rows + j * stride, stride, sg + j, lds);
    }
  }
}

// out[h * hd + e0 + e] += sum_{j < n} p[h * ldp + j] * row_j[e0 + e] for h < H, e < C * N: rows
// hd floats at rows + j * stride bytes.
template <int H, int C>
HWY_INLINE void GroupAxpy(const float* p, int64_t ldp, const uint8_t* rows, size_t stride, int64_t n, int64_t hd,
                          int64_t e0, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<decltype(d)> acc[H][C];
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c) acc[h][c] = hn::LoadU(d, out + h * hd + e0 + c * N);
  for (int64_t j = 0; j < n; ++j) {
    const float* row = FloatRow(rows, stride, j) + e0;
    hn::Vec<decltype(d)> rv[C];
    for (int c = 0; c < C; ++c) rv[c] = hn::LoadU(d, row + c * N);
    for (int h = 0; h < H; ++h) {
      const auto w = hn::Set(d, p[h * ldp + j]);
      for (int c = 0; c < C; ++c) acc[h][c] = hn::MulAdd(w, rv[c], acc[h][c]);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c) hn::StoreU(acc[h][c], d, out + h * hd + e0 + c * N);
}

template <int H>
HWY_INLINE void GroupAxpyRow(const float* p, int64_t ldp, const uint8_t* rows, size_t stride, int64_t n, int64_t hd,
                             float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t e = 0;
  for (; e + kAxpyVecs * N <= hd; e += kAxpyVecs * N) GroupAxpy<H, kAxpyVecs>(p, ldp, rows, stride, n, hd, e, out);
  for (; e + N <= hd; e += N) GroupAxpy<H, 1>(p, ldp, rows, stride, n, hd, e, out);
  for (; e < hd; ++e)
    for (int h = 0; h < H; ++h) {
      float s = out[h * hd + e];
      for (int64_t j = 0; j < n; ++j) s += p[h * ldp + j] * load_f32(FloatRow(rows, stride, j) + e);
      out[h * hd + e] = s;
    }
}

// out[g * hd + e] += sum_{j < n} p[g * ldp + j] * row_j[e] for g < nq, e < hd.
HWY_INLINE void GroupAxpyAll(const float* p, int64_t nq, int64_t ldp, const uint8_t* rows, size_t stride, int64_t n,
                             int64_t hd, float* out) {
  for (int64_t g = 0; g < nq; g += 2) {
    if (g + 1 < nq) GroupAxpyRow<2>(p + g * ldp, ldp, rows, stride, n, hd, out + g * hd);
    else GroupAxpyRow<1>(p + g * ldp, ldp, rows, stride, n, hd, out + g * hd);
  }
}
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
