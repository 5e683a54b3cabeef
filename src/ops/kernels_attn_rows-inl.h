// Full (unmasked) attention of a block of query rows of one head over all its keys, one copy
// per Highway target (included via foreach_target after kernels_elementwise-inl.h, whose
// Softmax it reuses). What Whisper's encoder runs: 1500 queries x 1500 keys per head.
//
// Why: attend_head per query reads every key row once per query and ends each 64-element dot
// with a horizontal sum; as two matmuls the 1500 x 1500 score matrix of a head (9 MB) went
// through memory twice. Here a block of queries (scores for the block stay in L2) is run as
// two register-tiled products: S = Q K^T with the keys given transposed (kt: [hd][n_kv], so a
// vector holds consecutive keys) and O = P V, each an R x C tile of accumulators fed by one
// broadcast per row and C vector loads per step; no horizontal sums.
#if defined(EDGELLM_OPS_ATTN_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTN_ROWS_INL_H_
#undef EDGELLM_OPS_ATTN_ROWS_INL_H_
#else
#define EDGELLM_OPS_ATTN_ROWS_INL_H_
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "ops/fp16.h"
#include "ops/kernels_elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR
// Register tile: R rows x C vectors. AVX-512 has 32 vector registers, the others 16.
#if HWY_TARGET <= HWY_AVX3
constexpr int kAttnR = 6, kAttnC = 4;
#else
constexpr int kAttnR = 3, kAttnC = 3;
#endif

// acc[r][c] = sum_k a[r][k * a_step] * b[k * ldb + c * N + ...] for k < K, stored to
// out[r * ldo + c * N ...]. `a` rows at a[r] (a_step floats between k), b rows ldb floats apart.
// `nc` vectors (<= C) per row; the caller handles columns past the last whole vector.
template <int R, int C>
HWY_INLINE void TileRC(const float* const* a, int64_t a_step, const float* b, size_t ldb, int64_t K, int nc,
                       float* const* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  hn::Vec<decltype(d)> acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = hn::Zero(d);
  if (nc == C) {
    for (int64_t k = 0; k < K; ++k) {
      const float* bk = b + k * ldb;
      hn::Vec<decltype(d)> bv[C];
      for (int c = 0; c < C; ++c) bv[c] = hn::LoadU(d, bk + c * N);
      for (int r = 0; r < R; ++r) {
        const auto av = hn::Set(d, load_f32(a[r] + k * a_step));
        for (int c = 0; c < C; ++c) acc[r][c] = hn::MulAdd(av, bv[c], acc[r][c]);
      }
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      const float* bk = b + k * ldb;
      for (int c = 0; c < nc; ++c) {
        const auto bv = hn::LoadU(d, bk + c * N);
        for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(hn::Set(d, load_f32(a[r] + k * a_step)), bv, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < nc; ++c) hn::StoreU(acc[r][c], d, out[r] + c * N);
}

// out[r][j] = sum_k a[r][k * a_step] * b[k * ldb + j] for r < m, j < n: rows in tiles of R
// (a last partial tile as a smaller R), columns in C-vector strips, the last < N columns scalar.
template <int R>
HWY_INLINE void TileRows(const float* const* a, int64_t a_step, const float* b, size_t ldb, int64_t K, int64_t n,
                         float* const* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t strip = kAttnC * N;
  int64_t j = 0;
  for (; j + N <= n; j += strip) {
    const int nc = static_cast<int>(std::min<int64_t>(kAttnC, (n - j) / N));
    float* o[R];
    for (int r = 0; r < R; ++r) o[r] = out[r] + j;
    TileRC<R, kAttnC>(a, a_step, b + j, ldb, K, nc, o);
    if (nc < kAttnC) {
      j += nc * N;
      break;
    }
  }
  for (; j < n; ++j)
    for (int r = 0; r < R; ++r) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += load_f32(a[r] + k * a_step) * load_f32(b + k * ldb + j);
      out[r][j] = s;
    }
}

// The R of the next tile: kAttnR, or the m - i rows left as one smaller tile.
template <int R = kAttnR>
HWY_INLINE void TileAny(int rows, const float* const* a, int64_t a_step, const float* b, size_t ldb, int64_t K,
                        int64_t n, float* const* out) {
  if constexpr (R == 1) {
    TileRows<1>(a, a_step, b, ldb, K, n, out);
  } else {
    if (rows == R)
      TileRows<R>(a, a_step, b, ldb, K, n, out);
    else
      TileAny<R - 1>(rows, a, a_step, b, ldb, K, n, out);
  }
}
#endif  // HWY_TARGET != HWY_SCALAR

// y[t * ldy + j] = sum_k a[t * a_stride + k] * b[k * ldb + j] for t < m, j < n, k < K: the
// product of many rows with one packed panel of columns (ops/gemm_f32.h).
void GemmRows(const float* a, size_t a_stride, const float* b, size_t ldb, int64_t m, int64_t K, int64_t n, float* y,
              size_t ldy) {
#if HWY_TARGET == HWY_SCALAR
  for (int64_t t = 0; t < m; ++t)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += load_f32(a + t * a_stride + k) * load_f32(b + k * ldb + j);
      y[t * ldy + j] = acc;
    }
#else
  for (int64_t i0 = 0; i0 < m; i0 += kAttnR) {
    const int rows = static_cast<int>(std::min<int64_t>(kAttnR, m - i0));
    const float* ap[kAttnR];
    float* o[kAttnR];
    for (int r = 0; r < rows; ++r) ap[r] = a + (i0 + r) * a_stride, o[r] = y + (i0 + r) * ldy;
    TileAny(rows, ap, 1, b, ldb, K, n, o);
  }
#endif
}

// m query rows (q + i * q_stride) of one head, hd floats each, over n_kv keys and values:
// kt[e * kt_stride + j] = element e of key j (keys transposed), value j at v + j * v_stride.
// Columns [n_kv, kt_stride) of kt are read too (finite values; their scores are dropped), so the
// caller pads them to whole vectors and the score tiles need no scalar tail. s: scratch of
// m rows of kt_stride floats. out row i at out + i * out_stride (hd floats).
void AttendRows(const float* q, size_t q_stride, const float* kt, size_t kt_stride, const float* v, size_t v_stride,
                int64_t m, int64_t n_kv, int64_t hd, float scale, float* s, float* out, size_t out_stride) {
  const int64_t ss = static_cast<int64_t>(kt_stride);
#if HWY_TARGET == HWY_SCALAR
  for (int64_t i = 0; i < m; ++i) {
    float* si = s + i * ss;
    for (int64_t j = 0; j < n_kv; ++j) {
      float acc = 0;
      for (int64_t e = 0; e < hd; ++e) acc += q[i * q_stride + e] * kt[e * kt_stride + j];
      si[j] = acc * scale;
    }
    Softmax(si, n_kv);
    for (int64_t e = 0; e < hd; ++e) {
      float acc = 0;
      for (int64_t j = 0; j < n_kv; ++j) acc += si[j] * v[j * v_stride + e];
      out[i * out_stride + e] = acc;
    }
  }
#else
  for (int64_t i0 = 0; i0 < m; i0 += kAttnR) {
    const int rows = static_cast<int>(std::min<int64_t>(kAttnR, m - i0));
    const float* a[kAttnR];
    float* o[kAttnR];
    // S rows: a = q rows (step 1 over e), b = kt ([hd][n_kv]).
    for (int r = 0; r < rows; ++r) a[r] = q + (i0 + r) * q_stride, o[r] = s + (i0 + r) * ss;
    TileAny(rows, a, 1, kt, kt_stride, hd, ss, o);
  }
  // Unnormalised probabilities e_j = exp(scale (s_j - max)) in one pass; the 1 / sum is applied
  // to the hd outputs instead of the n_kv probabilities.
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vscale = hn::Set(d, scale), lo = hn::Set(d, -104.f);
  HWY_ALIGN float inv[kAttnR];
  for (int64_t i0 = 0; i0 < m; i0 += kAttnR) {
    const int rows = static_cast<int>(std::min<int64_t>(kAttnR, m - i0));
    for (int r = 0; r < rows; ++r) {
      float* si = s + (i0 + r) * ss;
      auto vmax = hn::Set(d, -INFINITY);
      int64_t j = 0;
      for (; j + N <= n_kv; j += N) vmax = hn::Max(vmax, hn::LoadU(d, si + j));
      float mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
      for (; j < n_kv; ++j) mx = si[j] > mx ? si[j] : mx;
      const auto vms = hn::Set(d, mx * scale);
      auto vsum = hn::Zero(d);
      for (j = 0; j + N <= n_kv; j += N) {
        const auto e = hn::Exp(d, hn::Max(hn::MulSub(hn::LoadU(d, si + j), vscale, vms), lo));
        hn::StoreU(e, d, si + j);
        vsum = hn::Add(vsum, e);
      }
      float tail = 0;
      if (j < n_kv) {  // the tail as one zero-padded vector, so it gets the same math
        HWY_ALIGN float t[hn::MaxLanes(d)] = {};
        for (int64_t k = j; k < n_kv; ++k) t[k - j] = si[k];
        hn::Store(hn::Exp(d, hn::Max(hn::MulSub(hn::Load(d, t), vscale, vms), lo)), d, t);
        for (int64_t k = j; k < n_kv; ++k) si[k] = t[k - j], tail += t[k - j];
      }
      inv[r] = 1.0f / (hn::GetLane(hn::SumOfLanes(d, vsum)) + tail);
    }
    const float* a[kAttnR];
    float* o[kAttnR];
    // O rows: a = probability rows (step 1 over j), b = v ([n_kv][hd], v_stride apart).
    for (int r = 0; r < rows; ++r) a[r] = s + (i0 + r) * ss, o[r] = out + (i0 + r) * out_stride;
    TileAny(rows, a, 1, v, v_stride, n_kv, hd, o);
    for (int r = 0; r < rows; ++r) ScaleF32(o[r], inv[r], hd);
  }
#endif
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
