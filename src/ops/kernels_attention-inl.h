// Attention of one query head over cached keys/values, one copy per Highway target (included
// via foreach_target after kernels_elementwise-inl.h, whose Softmax it reuses).
//
// Why one kernel: the model used to call dot_f32 and axpy_f32 per cached position, two
// dispatched calls per position and head, with the output row loaded and stored again for
// every position. Here scores take 4 keys per pass (4 independent FMA chains, one reduction
// each), and the output is built a few vectors at a time in registers over all positions.
#if defined(EDGELLM_OPS_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_ATTENTION_INL_H_
#undef EDGELLM_OPS_ATTENTION_INL_H_
#else
#define EDGELLM_OPS_ATTENTION_INL_H_
#endif

#include <cmath>

#include "hwy/highway.h"
#include "ops/kernels_elementwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// scores[j] = q . k_j for j < n (k_j = k + j * stride), hd elements each.
HWY_INLINE void AttnScores(const float* q, const float* k, int64_t stride, int64_t n, int64_t hd, float* scores) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t hv = hd - hd % N;  // vector part; the rest is scalar
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * stride;
    auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (int64_t i = 0; i < hv; i += N) {
      const auto vq = hn::LoadU(d, q + i);
      s0 = hn::MulAdd(vq, hn::LoadU(d, k0 + i), s0);
      s1 = hn::MulAdd(vq, hn::LoadU(d, k0 + stride + i), s1);
      s2 = hn::MulAdd(vq, hn::LoadU(d, k0 + 2 * stride + i), s2);
      s3 = hn::MulAdd(vq, hn::LoadU(d, k0 + 3 * stride + i), s3);
    }
    scores[j] = hn::GetLane(hn::SumOfLanes(d, s0));
    scores[j + 1] = hn::GetLane(hn::SumOfLanes(d, s1));
    scores[j + 2] = hn::GetLane(hn::SumOfLanes(d, s2));
    scores[j + 3] = hn::GetLane(hn::SumOfLanes(d, s3));
    for (int64_t i = hv; i < hd; ++i)
      for (int u = 0; u < 4; ++u) scores[j + u] += q[i] * k0[u * stride + i];
  }
  for (; j < n; ++j) {
    const float* kj = k + j * stride;
    auto s0 = hn::Zero(d);
    for (int64_t i = 0; i < hv; i += N) s0 = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, kj + i), s0);
    float s = hn::GetLane(hn::SumOfLanes(d, s0));
    for (int64_t i = hv; i < hd; ++i) s += q[i] * kj[i];
    scores[j] = s;
  }
}

// out[i0 .. i0 + kV*N) = sum_j p[j] * v_j[same], accumulated in kV registers; kJ sets of
// them take alternate positions so that at least 8 FMAs are independent (a single chain per
// vector is bound by FMA latency: 4 cycles per position).
template <int kV, int kJ, class D>
HWY_INLINE void AttnValues(D d, const float* p, const float* v, int64_t stride, int64_t n, int64_t i0, float* out) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<D> acc[kJ][kV];
  for (int s = 0; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[s][u] = hn::Zero(d);
  int64_t j = 0;
  for (; j + kJ <= n; j += kJ)
    for (int s = 0; s < kJ; ++s) {
      const auto pj = hn::Set(d, p[j + s]);
      const float* vj = v + (j + s) * stride + i0;
      for (int u = 0; u < kV; ++u) acc[s][u] = hn::MulAdd(pj, hn::LoadU(d, vj + u * N), acc[s][u]);
    }
  for (; j < n; ++j) {
    const auto pj = hn::Set(d, p[j]);
    const float* vj = v + j * stride + i0;
    for (int u = 0; u < kV; ++u) acc[0][u] = hn::MulAdd(pj, hn::LoadU(d, vj + u * N), acc[0][u]);
  }
  for (int s = 1; s < kJ; ++s)
    for (int u = 0; u < kV; ++u) acc[0][u] = hn::Add(acc[0][u], acc[s][u]);
  for (int u = 0; u < kV; ++u) hn::StoreU(acc[0][u], d, out + i0 + u * N);
}

void AttendHead(const float* q, const float* k, const float* v, int64_t stride, int64_t n, int64_t hd, float scale,
                float softcap, float* scores, float* out) {
  AttnScores(q, k, stride, n, hd, scores);
  for (int64_t j = 0; j < n; ++j) {
    float s = scores[j] * scale;
    if (softcap > 0) s = softcap * std::tanh(s / softcap);
    scores[j] = s;
  }
  Softmax(scores, n);
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  // 8 accumulators in flight fit the registers of every target with 16 or more.
  for (; i + 8 * N <= hd; i += 8 * N) AttnValues<8, 1>(d, scores, v, stride, n, i, out);
  for (; i + 4 * N <= hd; i += 4 * N) AttnValues<4, 2>(d, scores, v, stride, n, i, out);
  for (; i + N <= hd; i += N) AttnValues<1, 4>(d, scores, v, stride, n, i, out);
  for (; i < hd; ++i) {
    float s = 0;
    for (int64_t j = 0; j < n; ++j) s += scores[j] * v[j * stride + i];
    out[i] = s;
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
