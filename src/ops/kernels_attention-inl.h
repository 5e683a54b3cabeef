// Attention of one query head over cached keys/values, one copy per Highway target (included
// via foreach_target after kernels_elementwise-inl.h, whose Softmax it reuses).
//
// Why one kernel: the model used to call dot_f32 and axpy_f32 per cached position, two
// dispatched calls per position and head, with the output row loaded and stored again for
// every position. Here scores take 4 keys per pass (4 independent FMA chains, one reduction
// each), and the output is built a few vectors at a time in registers over all positions.
//
// The cache rows may be F32, F16, Q8_0 or Q4_0 (keys and values each their own type) and are
// read as stored: a vector of elements is widened to fp32 in registers, never to a row copy.
// Block formats apply the block scale once per 32 elements (scores: to the block's partial
// dot; values: folded into the probability), so the inner loops are plain FMAs.
#if defined(EDGELLM_OPS_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTENTION_INL_H_
#undef EDGELLM_OPS_ATTENTION_INL_H_
#else
#define EDGELLM_OPS_ATTENTION_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "hwy/highway.h"
#include "io/tensor_type.h"
#include "ops/attn_prefetch.h"
#include "ops/fp16.h"
#include "ops/kernels_attn_group-inl.h"
#include "ops/kernels_attn_q8-inl.h"
#include "ops/kernels_attn_q8v-inl.h"
#include "ops/kernels_elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Row readers: Load(d, row, e) = elements [e, e + N) as fp32 without the block scale (e a
// multiple of N, and for block formats N divides 32 so a vector never spans two blocks);
// Scale(row, b) = scale of block b; Scalar(row, e) = one element. HWY_SCALAR (1 lane) builds
// vectors from Scalar, as its PromoteTo lacks these widenings.
// A block's fp16 scale. One-lane vector conversion (F16C on x86): the portable bit-twiddling
// f16_to_f32, once per block and row, made q8_0 attention 2-3x slower than f16.
HWY_INLINE float BlockScale(const uint8_t* p) {
#if HWY_TARGET == HWY_SCALAR
  return load_f16(p);
#else
  const hn::CappedTag<float, 1> d1;
  const hn::Rebind<hwy::float16_t, decltype(d1)> dh;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))));
#endif
}

struct KvF32 {
  static constexpr bool kBlocked = false;
  static constexpr size_t kElemBytes = 4;
  static float Scalar(const uint8_t* r, int64_t e) {
    float f;
    std::memcpy(&f, r + 4 * e, 4);
    return f;
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* r, int64_t e) {
    return hn::LoadU(d, reinterpret_cast<const float*>(r) + e);
  }
};
struct KvF16 {
  static constexpr bool kBlocked = false;
  static constexpr size_t kElemBytes = 2;
  static float Scalar(const uint8_t* r, int64_t e) { return f16_to_f32(load_u16(r + 2 * e)); }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* r, int64_t e) {
#if HWY_TARGET == HWY_SCALAR
    return hn::Set(d, Scalar(r, e));
#else
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(r) + e));
#endif
  }
};
struct KvQ8_0 {  // blocks of 34 bytes: fp16 scale, 32 x int8
  static constexpr bool kBlocked = true;
  static constexpr size_t kBlockBytes = 34;
  static float Scale(const uint8_t* r, int64_t b) { return BlockScale(r + 34 * b); }
  static float Scalar(const uint8_t* r, int64_t e) {
    return static_cast<float>(static_cast<int8_t>(r[34 * (e >> 5) + 2 + (e & 31)]));
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* r, int64_t e) {
#if HWY_TARGET == HWY_SCALAR
    return hn::Set(d, Scalar(r, e));
#else
    const hn::Rebind<int8_t, D> d8;
    const hn::Rebind<int32_t, D> d32;
    const auto* p = reinterpret_cast<const int8_t*>(r + 34 * (e >> 5) + 2 + (e & 31));
    return hn::ConvertTo(d, hn::PromoteTo(d32, hn::LoadU(d8, p)));
#endif
  }
};
struct KvQ4_0 {  // blocks of 18 bytes: fp16 scale, 16 bytes (low nibble = e, high = e + 16), value q - 8
  static constexpr bool kBlocked = true;
  static constexpr size_t kBlockBytes = 18;
  static float Scale(const uint8_t* r, int64_t b) { return BlockScale(r + 18 * b); }
  static float Scalar(const uint8_t* r, int64_t e) {
    const uint8_t byte = r[18 * (e >> 5) + 2 + (e & 15)];
    return static_cast<float>(((e & 31) < 16 ? byte & 0xF : byte >> 4) - 8);
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* r, int64_t e) {
#if HWY_TARGET == HWY_SCALAR
    return hn::Set(d, Scalar(r, e));
#else
    const hn::Rebind<uint8_t, D> d8;
    const hn::Rebind<int32_t, D> d32;
    const auto bytes = hn::LoadU(d8, r + 18 * (e >> 5) + 2 + (e & 15));
    const auto nib = (e & 31) < 16 ? hn::And(bytes, hn::Set(d8, 0xF)) : hn::ShiftRight<4>(bytes);
    return hn::Sub(hn::ConvertTo(d, hn::PromoteTo(d32, nib)), hn::Set(d, 8.f));
#endif
  }
};

// scores[j] = q . k_j for j < n (k_j at k + j * stride bytes), hd elements each.
template <class F>
HWY_INLINE void AttnScores(const float* q, const uint8_t* k, size_t stride, int64_t n, int64_t hd, float* scores) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // Float formats: the vector part, then a scalar tail. Block formats: hd % 32 == 0 and the
  // block's scale multiplies its partial dot (bk = hd for float formats: one "block").
  const int64_t bk = F::kBlocked ? 32 : hd - hd % N;
  const int64_t hv = F::kBlocked ? hd : bk;
  auto scale = [&](const uint8_t* r, int64_t b) {
    if constexpr (F::kBlocked) return F::Scale(r, b);
    else return 1.f;
  };
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* r[4] = {k + j * stride, k + (j + 1) * stride, k + (j + 2) * stride, k + (j + 3) * stride};
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (int64_t b0 = 0; b0 < hv; b0 += bk) {
      auto p0 = hn::Zero(d), p1 = hn::Zero(d), p2 = hn::Zero(d), p3 = hn::Zero(d);
      for (int64_t i = b0; i < b0 + bk; i += N) {
        const auto vq = hn::LoadU(d, q + i);
        p0 = hn::MulAdd(vq, F::Load(d, r[0], i), p0);
        p1 = hn::MulAdd(vq, F::Load(d, r[1], i), p1);
        p2 = hn::MulAdd(vq, F::Load(d, r[2], i), p2);
        p3 = hn::MulAdd(vq, F::Load(d, r[3], i), p3);
      }
      if constexpr (F::kBlocked) {
        const int64_t b = b0 / 32;
        s0 = hn::MulAdd(hn::Set(d, scale(r[0], b)), p0, s0);
        s1 = hn::MulAdd(hn::Set(d, scale(r[1], b)), p1, s1);
        s2 = hn::MulAdd(hn::Set(d, scale(r[2], b)), p2, s2);
        s3 = hn::MulAdd(hn::Set(d, scale(r[3], b)), p3, s3);
      } else {
        s0 = p0, s1 = p1, s2 = p2, s3 = p3;
      }
    }
    scores[j] = hn::GetLane(hn::SumOfLanes(d, s0));
    scores[j + 1] = hn::GetLane(hn::SumOfLanes(d, s1));
    scores[j + 2] = hn::GetLane(hn::SumOfLanes(d, s2));
    scores[j + 3] = hn::GetLane(hn::SumOfLanes(d, s3));
    for (int64_t i = hv; i < hd; ++i)
      for (int u = 0; u < 4; ++u) scores[j + u] += q[i] * F::Scalar(r[u], i);
  }
  for (; j < n; ++j) {
    const uint8_t* r = k + j * stride;
    auto s0 = hn::Zero(d);
    for (int64_t b0 = 0; b0 < hv; b0 += bk) {
      auto p0 = hn::Zero(d);
      for (int64_t i = b0; i < b0 + bk; i += N) p0 = hn::MulAdd(hn::LoadU(d, q + i), F::Load(d, r, i), p0);
      if constexpr (F::kBlocked) s0 = hn::MulAdd(hn::Set(d, scale(r, b0 / 32)), p0, s0);
      else s0 = p0;
    }
    float s = hn::GetLane(hn::SumOfLanes(d, s0));
    for (int64_t i = hv; i < hd; ++i) s += q[i] * F::Scalar(r, i);
    scores[j] = s;
  }
}

// out[i0 .. i0 + kV*N) = sum_j p[j] * v_j[same], accumulated in kV registers; kJ sets of
// them take alternate positions so that at least 8 FMAs are independent (a single chain per
// vector is bound by FMA latency: 4 cycles per position). Block formats fold the block scale
// into the weight, computed once per block the chunk touches.
template <class F, int kV, int kJ, class D>
HWY_INLINE void AttnValues(D d, const float* p, const uint8_t* v, size_t stride, int64_t n, int64_t i0, float* out) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> acc[kJ][kV];
  for (int s = 0; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[s][u] = hn::Zero(d);
  auto add_row = [&](hn::Vec<D>* a, float pj, const uint8_t* r) {
    auto w = hn::Set(d, pj);
    for (int u = 0; u < kV; ++u) {
      const int64_t e = i0 + u * N;
      if constexpr (F::kBlocked)
        if (u == 0 || (e & 31) == 0) w = hn::Set(d, pj * F::Scale(r, e >> 5));
      a[u] = hn::MulAdd(w, F::Load(d, r, e), a[u]);
    }
  };
  int64_t j = 0;
  for (; j + kJ <= n; j += kJ)
    for (int s = 0; s < kJ; ++s) add_row(acc[s], p[j + s], v + (j + s) * stride);
  for (; j < n; ++j) add_row(acc[0], p[j], v + j * stride);
  for (int s = 1; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[0][u] = hn::Add(acc[0][u], acc[s][u]);
  for (int u = 0; u < kV; ++u) hn::StoreU(acc[0][u], d, out + i0 + u * N);
}

template <class F>
HWY_INLINE void AttnAllValues(const float* p, const uint8_t* v, size_t stride, int64_t n, int64_t hd, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  // 8 accumulators in flight fit the registers of every target with 16 or more.
  for (; i + 8 * N <= hd; i += 8 * N) AttnValues<F, 8, 1>(d, p, v, stride, n, i, out);
  for (; i + 4 * N <= hd; i += 4 * N) AttnValues<F, 4, 2>(d, p, v, stride, n, i, out);
  for (; i + N <= hd; i += N) AttnValues<F, 1, 4>(d, p, v, stride, n, i, out);
  for (; i < hd; ++i) {  // float formats only (block formats have hd % 32 == 0)
    float s = 0;
    for (int64_t j = 0; j < n; ++j) s += p[j] * F::Scalar(v + j * stride, i);
    out[i] = s;
  }
}

// k / v: first row of this head's keys / values, rows stride bytes apart, of type k_type /
// v_type (F32, F16, Q8_0, Q4_0; block formats need hd % 32 == 0, checked by the caller).
void AttendHeadKv(const float* q, io::TensorType k_type, const void* k, size_t k_stride, io::TensorType v_type,
                  const void* v, size_t v_stride, int64_t n, int64_t hd, float scale, float softcap, float* scores,
                  float* out) {
  const auto* kb = static_cast<const uint8_t*>(k);
  const auto* vb = static_cast<const uint8_t*>(v);
  switch (k_type) {
    case io::TensorType::F16: AttnScores<KvF16>(q, kb, k_stride, n, hd, scores); break;
    case io::TensorType::Q8_0: AttnScores<KvQ8_0>(q, kb, k_stride, n, hd, scores); break;
    case io::TensorType::Q4_0: AttnScores<KvQ4_0>(q, kb, k_stride, n, hd, scores); break;
    default: AttnScores<KvF32>(q, kb, k_stride, n, hd, scores); break;
  }
  for (int64_t j = 0; j < n; ++j) {
    float s = scores[j] * scale;
    if (softcap > 0) s = softcap * std::tanh(s / softcap);
    scores[j] = s;
  }
  Softmax(scores, n);
  switch (v_type) {
    case io::TensorType::F16: AttnAllValues<KvF16>(scores, vb, v_stride, n, hd, out); break;
    case io::TensorType::Q8_0: AttnAllValues<KvQ8_0>(scores, vb, v_stride, n, hd, out); break;
    case io::TensorType::Q4_0: AttnAllValues<KvQ4_0>(scores, vb, v_stride, n, hd, out); break;
    default: AttnAllValues<KvF32>(scores, vb, v_stride, n, hd, out); break;
  }
}


// ---- Grouped-query attention: every query head of one KV head in one pass over its rows ----
// Rows are taken in tiles that fit L1 (kGroupTileFloats): a tile of keys (values) is widened
// to fp32 once, block scale included (int8 or nibble times an fp16 scale is exact in fp32),
// then every query head uses it from L1. The per-head kernel reads and widens a KV head's
// rows once per query head (6 times on Qwen2.5-1.5B), from L3 or memory at long contexts.
constexpr int64_t kGroupTileFloats = 4096;

// rows [0, r) of hd elements each (src rows stride bytes apart) -> dst (rows hd floats apart).
// Each row's cache lines are prefetched kAttnPrefetchBytes ahead (attn_prefetch.h).
template <class F>
HWY_INLINE void WidenRows(const uint8_t* src, size_t stride, int64_t r, int64_t hd, float* dst) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  size_t rb;  // bytes of one row
  if constexpr (F::kBlocked) rb = static_cast<size_t>(hd / 32) * F::kBlockBytes;
  else rb = static_cast<size_t>(hd) * F::kElemBytes;
  const size_t ahead = AttnPrefetchRows(stride) * stride;
  for (int64_t j = 0; j < r; ++j) {
    const uint8_t* row = src + j * stride;
    PrefetchRow(row + ahead, rb);
    float* o = dst + j * hd;
    if constexpr (F::kBlocked) {
      for (int64_t b0 = 0; b0 < hd; b0 += 32) {
        const auto s = hn::Set(d, F::Scale(row, b0 / 32));
        for (int64_t i = b0; i < b0 + 32; i += N) hn::StoreU(hn::Mul(s, F::Load(d, row, i)), d, o + i);
      }
    } else {
      int64_t i = 0;
      for (; i + N <= hd; i += N) hn::StoreU(F::Load(d, row, i), d, o + i);
      for (; i < hd; ++i) o[i] = F::Scalar(row, i);
    }
  }
}

// out[i0 .. i0 + kV*N) += sum_{j < r} p[j] * rows_j[same] (fp32 rows hd floats apart); kJ
// accumulator sets take alternate rows so at least 8 FMAs are independent.
template <int kV, int kJ, class D>
HWY_INLINE void TileValues(D d, const float* p, const float* rows, int64_t r, int64_t hd, int64_t i0, float* out) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> acc[kJ][kV];
  for (int u = 0; u < kV; ++u) acc[0][u] = hn::LoadU(d, out + i0 + u * N);
  for (int s = 1; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[s][u] = hn::Zero(d);
  auto add_row = [&](hn::Vec<D>* a, float pj, const float* row) {
    const auto w = hn::Set(d, pj);
    for (int u = 0; u < kV; ++u) a[u] = hn::MulAdd(w, hn::LoadU(d, row + i0 + u * N), a[u]);
  };
  int64_t j = 0;
  for (; j + kJ <= r; j += kJ)
    for (int s = 0; s < kJ; ++s) add_row(acc[s], p[j + s], rows + (j + s) * hd);
  for (; j < r; ++j) add_row(acc[0], p[j], rows + j * hd);
  for (int s = 1; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[0][u] = hn::Add(acc[0][u], acc[s][u]);
  for (int u = 0; u < kV; ++u) hn::StoreU(acc[0][u], d, out + i0 + u * N);
}

HWY_INLINE void TileAllValues(const float* p, const float* rows, int64_t r, int64_t hd, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + 8 * N <= hd; i += 8 * N) TileValues<8, 1>(d, p, rows, r, hd, i, out);
  for (; i + 4 * N <= hd; i += 4 * N) TileValues<4, 2>(d, p, rows, r, hd, i, out);
  for (; i + N <= hd; i += N) TileValues<1, 4>(d, p, rows, r, hd, i, out);
  for (; i < hd; ++i) {
    float s = out[i];
    for (int64_t j = 0; j < r; ++j) s += p[j] * rows[j * hd + i];
    out[i] = s;
  }
}

// Scores of nq heads (q: nq rows of hd) over n rows of type F; scores: nq rows of n.
template <class F>
HWY_INLINE void GroupScores(const float* q, int64_t nq, const uint8_t* k, size_t stride, int64_t n, int64_t hd,
                            float* tile, float* scores) {
  const int64_t tr = kGroupTileFloats / hd;
  for (int64_t j0 = 0; j0 < n; j0 += tr) {
    const int64_t r = std::min(tr, n - j0);
    const uint8_t* rows = k + j0 * stride;
    size_t rs = stride;
    if constexpr (!std::is_same_v<F, KvF32>) {  // F32 rows are used in place
      WidenRows<F>(rows, stride, r, hd, tile);
      rows = reinterpret_cast<const uint8_t*>(tile);
      rs = static_cast<size_t>(hd) * sizeof(float);
    }
#if HWY_TARGET == HWY_SCALAR
    for (int64_t g = 0; g < nq; ++g) AttnScores<KvF32>(q + g * hd, rows, rs, r, hd, scores + g * n + j0);
#else
    GroupDotsAll(q, nq, hd, rows, rs, r, scores + j0, n);
#endif
  }
}

// out = sum_j p_j v_j per head (p: nq rows of n weights).
template <class F>
HWY_INLINE void GroupValues(const float* p, int64_t nq, const uint8_t* v, size_t stride, int64_t n, int64_t hd,
                            float* tile, float* out) {
  const int64_t tr = kGroupTileFloats / hd;
  std::fill(out, out + nq * hd, 0.f);
  for (int64_t j0 = 0; j0 < n; j0 += tr) {
    const int64_t r = std::min(tr, n - j0);
#if HWY_TARGET == HWY_SCALAR
    // Float rows may be padded (stride > hd floats), so every type goes through the tile.
    WidenRows<F>(v + j0 * stride, stride, r, hd, tile);
    for (int64_t g = 0; g < nq; ++g) TileAllValues(p + g * n + j0, tile, r, hd, out + g * hd);
#else
    const uint8_t* rows = v + j0 * stride;
    size_t rs = stride;
    if constexpr (!std::is_same_v<F, KvF32>) {  // F32 rows are used in place
      WidenRows<F>(rows, stride, r, hd, tile);
      rows = reinterpret_cast<const uint8_t*>(tile);
      rs = static_cast<size_t>(hd) * sizeof(float);
    }
    GroupAxpyAll(p + j0, nq, n, rows, rs, r, hd, out);
#endif
  }
}

// s[j] = exp(scale * (s[j] - max)) for j < n, returning their sum: the unnormalised softmax of
// scale * s (scale > 0). Arguments are clamped at -104, whose exp underflows to 0.
HWY_INLINE float ExpShiftedSum(float* s, int64_t n, float scale) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float mx = MaxOf(s, n);
  const auto vscale = hn::Set(d, scale), vms = hn::Set(d, mx * scale), lo = hn::Set(d, -104.f);
  auto vsum = hn::Zero(d);
  int64_t j = 0;
  for (; j + N <= n; j += N) {
    const auto e = hn::Exp(d, hn::Max(hn::MulSub(hn::LoadU(d, s + j), vscale, vms), lo));
    hn::StoreU(e, d, s + j);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  if (j < n) {  // the tail as one zero-padded vector, so it gets the same math
    HWY_ALIGN float t[hn::MaxLanes(d)] = {};
    for (int64_t i = j; i < n; ++i) t[i - j] = s[i];
    hn::Store(hn::Exp(d, hn::Max(hn::MulSub(hn::Load(d, t), vscale, vms), lo)), d, t);
    for (int64_t i = j; i < n; ++i) s[i] = t[i - j], sum += t[i - j];
  }
  return sum;
}

// Scale, soft-cap and softmax of nq rows of n scores. Without a soft cap (and nq <=
// kMaxGroupHeads) the probabilities are left unnormalised, e_j = exp(scale (s_j - max)),
// computed in the pass that sums them (two passes over the scores instead of five), inv[g] =
// 1 / sum, and true is returned: the caller scales the hd outputs instead of the n weights.
constexpr int64_t kMaxGroupHeads = 64;
HWY_INLINE bool GroupSoftmax(int64_t nq, int64_t n, float scale, float softcap, float* scores, float* inv) {
  const bool fused = softcap <= 0 && nq <= kMaxGroupHeads;
  for (int64_t g = 0; g < nq; ++g) {
    float* s = scores + g * n;
    if (fused) {
      inv[g] = 1.f / ExpShiftedSum(s, n, scale);
      continue;
    }
    for (int64_t j = 0; j < n; ++j) {
      float x = s[j] * scale;
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      s[j] = x;
    }
    Softmax(s, n);
  }
  return fused;
}

// GroupSoftmax, then out = P V.
HWY_INLINE void GroupSoftmaxValues(int64_t nq, io::TensorType v_type, const uint8_t* vb, size_t v_stride, int64_t n,
                                   int64_t hd, float scale, float softcap, float* tile, float* scores, float* out) {
  HWY_ALIGN float inv[kMaxGroupHeads];
  const bool fused = GroupSoftmax(nq, n, scale, softcap, scores, inv);
  switch (v_type) {
    case io::TensorType::F16: GroupValues<KvF16>(scores, nq, vb, v_stride, n, hd, tile, out); break;
    case io::TensorType::Q8_0: GroupValues<KvQ8_0>(scores, nq, vb, v_stride, n, hd, tile, out); break;
    case io::TensorType::Q4_0: GroupValues<KvQ4_0>(scores, nq, vb, v_stride, n, hd, tile, out); break;
    default: GroupValues<KvF32>(scores, nq, vb, v_stride, n, hd, tile, out); break;
  }
  if (fused)
    for (int64_t g = 0; g < nq; ++g) ScaleF32(out + g * hd, inv[g], hd);
}

// Scores of nq heads over n rows of k_type (fp32 tiles).
HWY_INLINE void GroupScoresAny(const float* q, int64_t nq, io::TensorType k_type, const uint8_t* kb, size_t k_stride,
                               int64_t n, int64_t hd, float* tile, float* scores) {
  switch (k_type) {
    case io::TensorType::F16: GroupScores<KvF16>(q, nq, kb, k_stride, n, hd, tile, scores); break;
    case io::TensorType::Q8_0: GroupScores<KvQ8_0>(q, nq, kb, k_stride, n, hd, tile, scores); break;
    case io::TensorType::Q4_0: GroupScores<KvQ4_0>(q, nq, kb, k_stride, n, hd, tile, scores); break;
    default: GroupScores<KvF32>(q, nq, kb, k_stride, n, hd, tile, scores); break;
  }
}

// nq query heads sharing one KV head: q and out hold nq rows of hd floats, scores nq rows of
// n. hd <= kGroupTileFloats (checked by the caller).
void AttendGroupKv(const float* q, int64_t nq, io::TensorType k_type, const void* k, size_t k_stride,
                   io::TensorType v_type, const void* v, size_t v_stride, int64_t n, int64_t hd, float scale,
                   float softcap, float* scores, float* out) {
  HWY_ALIGN float tile[kGroupTileFloats];
  GroupScoresAny(q, nq, k_type, static_cast<const uint8_t*>(k), k_stride, n, hd, tile, scores);
  GroupSoftmaxValues(nq, v_type, static_cast<const uint8_t*>(v), v_stride, n, hd, scale, softcap, tile, scores, out);
}

#if HWY_TARGET == HWY_AVX3
// AttendGroupKv with VNNI integer kernels: Q8_0 keys against the query quantized to int8
// (kernels_attn_q8-inl.h), Q8_0 values against the weights quantized to u8 per chunk
// (kernels_attn_q8v-inl.h); the other type takes the fp32 kernel. The caller checks that one of
// the types is Q8_0, the CPU's VNNI and exact mode.
void AttendGroupKvQ8(const float* q, int64_t nq, io::TensorType k_type, const void* k, size_t k_stride,
                     io::TensorType v_type, const void* v, size_t v_stride, int64_t n, int64_t hd, float scale,
                     float softcap, float* scores, float* out) {
  HWY_ALIGN float tile[kGroupTileFloats];
  const auto* kb = static_cast<const uint8_t*>(k);
  const auto* vb = static_cast<const uint8_t*>(v);
  if (k_type == io::TensorType::Q8_0) GroupScoresQ8Vnni(q, nq, kb, k_stride, n, hd, scores);
  else GroupScoresAny(q, nq, k_type, kb, k_stride, n, hd, tile, scores);
  if (v_type != io::TensorType::Q8_0) {
    GroupSoftmaxValues(nq, v_type, vb, v_stride, n, hd, scale, softcap, tile, scores, out);
    return;
  }
  HWY_ALIGN float inv[kMaxGroupHeads];
  const bool fused = GroupSoftmax(nq, n, scale, softcap, scores, inv);
  GroupValuesQ8Vnni(scores, nq, n, vb, v_stride, n, hd, out);
  if (fused)
    for (int64_t g = 0; g < nq; ++g) ScaleF32(out + g * hd, inv[g], hd);
}
#endif

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
