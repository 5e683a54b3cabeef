// Row x token tiling shared by all weight formats, plus the float-weight (F32/F16/BF16)
// dot kernels. One copy per Highway target (included via foreach_target).
#if defined(EDGELLM_OPS_GEMV_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_GEMV_INL_H_
#undef EDGELLM_OPS_GEMV_INL_H_
#else
#define EDGELLM_OPS_GEMV_INL_H_
#endif

#include <algorithm>
#include <cstring>
#include <vector>

#include "hwy/highway.h"
#include "ops/fp16.h"
#include "ops/kernels_kquant-inl.h"
#include "ops/kernels_quant-inl.h"
#include "ops/kernels_tile-inl.h"
#include "ops/quant_ref.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR
// ---- float weights: activations stay fp32 ----
struct WF32 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* w, int64_t i) {
    return hn::LoadU(d, reinterpret_cast<const float*>(w) + i);
  }
  static float Scalar(const uint8_t* w, int64_t i) {
    float f;
    std::memcpy(&f, w + 4 * i, 4);
    return f;
  }
};
struct WF16 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* w, int64_t i) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(w) + i));
  }
  static float Scalar(const uint8_t* w, int64_t i) { return f16_to_f32(load_u16(w + 2 * i)); }
};
struct WBF16 {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* w, int64_t i) {
    const hn::Rebind<hwy::bfloat16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(w) + i));
  }
  static float Scalar(const uint8_t* w, int64_t i) { return bf16_to_f32(load_u16(w + 2 * i)); }
};

#endif  // HWY_TARGET != HWY_SCALAR

#if HWY_TARGET != HWY_SCALAR
template <class Fmt, int NT>
HWY_INLINE void DotFloat(const uint8_t* w, int64_t n, const float* const* x, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // Two accumulators per token hide FMA latency when few tokens share the weight load.
  hn::Vec<decltype(d)> a0[NT], a1[NT];
  for (int t = 0; t < NT; ++t) a0[t] = hn::Zero(d), a1[t] = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto w0 = Fmt::Load(d, w, i), w1 = Fmt::Load(d, w, i + N);
    for (int t = 0; t < NT; ++t) {
      a0[t] = hn::MulAdd(w0, hn::LoadU(d, x[t] + i), a0[t]);
      a1[t] = hn::MulAdd(w1, hn::LoadU(d, x[t] + i + N), a1[t]);
    }
  }
  for (; i + N <= n; i += N) {
    const auto w0 = Fmt::Load(d, w, i);
    for (int t = 0; t < NT; ++t) a0[t] = hn::MulAdd(w0, hn::LoadU(d, x[t] + i), a0[t]);
  }
  for (int t = 0; t < NT; ++t) out[t] = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0[t], a1[t])));
  for (; i < n; ++i) {
    const float wi = Fmt::Scalar(w, i);
    for (int t = 0; t < NT; ++t) out[t] += wi * x[t][i];
  }
}
#endif  // HWY_TARGET != HWY_SCALAR

#if HWY_TARGET == HWY_SCALAR
// The portable fallback: the reference dequantizer for weights, and the same int8
// activations as the SIMD paths (decoded to float), accumulated in double.
inline void ActToFloat(const float* a, int64_t n, float* out) { std::memcpy(out, a, n * sizeof(float)); }
inline void ActToFloat(const BlockQ8_A* a, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i / 32].d * a[i / 32].qs[i % 32];
}
inline void ActToFloat(const BlockQ8_KA* a, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i / 256].d[i % 256 / 32] * a[i / 256].qs[i % 256];
}
template <io::TensorType kType, class A>
struct ScalarKern {
  using Act = A;
  static constexpr bool kTile = false;
  template <int NT>
  static void Dot(const uint8_t* w, int64_t n_in, const Act* const* a, float* out) {
    thread_local std::vector<float> wf, af;
    wf.resize(static_cast<size_t>(n_in));
    af.resize(static_cast<size_t>(n_in));
    ref::dequantize(kType, w, wf.data(), n_in);
    for (int t = 0; t < NT; ++t) {
      ActToFloat(a[t], n_in, af.data());
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += static_cast<double>(wf[i]) * af[i];
      out[t] = static_cast<float>(s);
    }
  }
};
#else
// Kernel adaptors: Act is the activation element type, Dot<NT> one row against NT tokens.
template <class Fmt>
struct FloatKern {
  using Act = float;
  static constexpr bool kTile = false;
  template <int NT>
  static HWY_INLINE void Dot(const uint8_t* w, int64_t n_in, const Act* const* a, float* out) {
    DotFloat<Fmt, NT>(w, n_in, a, out);
  }
};
template <class Fmt>
struct LegacyKern {
  using Act = BlockQ8_A;
  static constexpr bool kTile = EDGELLM_X86_256;
  template <int NT>
  static HWY_INLINE void Dot(const uint8_t* w, int64_t n_in, const Act* const* a, float* out) {
    DotLegacy<Fmt, NT>(w, n_in / 32, a, out);
  }
#if EDGELLM_X86_256
  template <int NT>
  static HWY_INLINE void Tile(const uint8_t* const* w, int64_t n_in, const Act* const* a, float* out, int64_t pf) {
    TileLegacy<Fmt, NT>(w, n_in / 32, a, out, pf);
  }
#endif
};
template <bool kFive>
struct Q45KKern {
  using Act = BlockQ8_KA;
  static constexpr bool kTile = false;
  template <int NT>
  static HWY_INLINE void Dot(const uint8_t* w, int64_t n_in, const Act* const* a, float* out) {
    DotQ45K<kFive, NT>(w, n_in / 256, a, out);
  }
};
struct Q6KKern {
  using Act = BlockQ8_KA;
  static constexpr bool kTile = false;
  template <int NT>
  static HWY_INLINE void Dot(const uint8_t* w, int64_t n_in, const Act* const* a, float* out) {
    DotQ6K<NT>(w, n_in / 256, a, out);
  }
};

#endif  // HWY_TARGET == HWY_SCALAR

// Rows [r0, r1) x all tokens. Rows are taken in blocks small enough to stay in L1/L2
// while every group of 4 tokens streams past them, so in prefill each weight byte is
// fetched from memory once per block instead of once per token.
// Kernels with 4-row tiles (Kern::kTile): groups of 4 rows x up to 4 tokens; a last group of
// fewer rows repeats its last row and drops the extra results.
template <class Kern>
HWY_INLINE void GemvTiled(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1,
                          const uint8_t* act, size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  using Act = typename Kern::Act;
  const int64_t kRowBlock =
      n_tok <= 4 ? (r1 - r0) : (std::max<int64_t>(4, (16 * 1024) / static_cast<int64_t>(row_stride)) + 3) & ~int64_t{3};
  // Prefetch distance: whole tiles, about 8 KiB ahead (memory latency x bandwidth). Only the
  // first token group reads the weights from memory; later ones find them in cache.
  const int64_t tile_bytes = 4 * static_cast<int64_t>(row_stride);
  const int64_t pf_dist = ((8 * 1024 + tile_bytes - 1) / tile_bytes) * tile_bytes;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = std::min(r1, rb + kRowBlock);
    for (int64_t t0 = 0; t0 < n_tok; t0 += 4) {
      const int nt = static_cast<int>(std::min<int64_t>(4, n_tok - t0));
      const Act* ap[4];
      for (int k = 0; k < nt; ++k) ap[k] = reinterpret_cast<const Act*>(act + (t0 + k) * act_stride);
      const int64_t pf = t0 == 0 ? pf_dist : 0;
      for (int64_t r = rb; r < re; r += 4) {
        const uint8_t* wr[4];
        for (int j = 0; j < 4; ++j) wr[j] = w + std::min(r + j, re - 1) * row_stride;
        float out[16];
        switch (nt) {
          case 4: Kern::template Tile<4>(wr, n_in, ap, out, pf); break;
          case 3: Kern::template Tile<3>(wr, n_in, ap, out, pf); break;
          case 2: Kern::template Tile<2>(wr, n_in, ap, out, pf); break;
          default: Kern::template Tile<1>(wr, n_in, ap, out, pf); break;
        }
        const int nr = static_cast<int>(std::min<int64_t>(4, re - r));
        for (int k = 0; k < nt; ++k)
          for (int j = 0; j < nr; ++j) y[(t0 + k) * ldy + r + j] = out[4 * k + j];
      }
    }
  }
}

template <class Kern>
void Gemv(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1,
          const uint8_t* act, size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  using Act = typename Kern::Act;
  if constexpr (Kern::kTile) {
    GemvTiled<Kern>(w, row_stride, n_in, r0, r1, act, act_stride, n_tok, y, ldy);
    return;
  }
  const int64_t kRowBlock = n_tok <= 4 ? (r1 - r0) : std::max<int64_t>(4, (16 * 1024) / static_cast<int64_t>(row_stride));
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = std::min(r1, rb + kRowBlock);
    for (int64_t t0 = 0; t0 < n_tok; t0 += 4) {
      const int nt = static_cast<int>(std::min<int64_t>(4, n_tok - t0));
      const Act* ap[4];
      for (int k = 0; k < nt; ++k) ap[k] = reinterpret_cast<const Act*>(act + (t0 + k) * act_stride);
      for (int64_t r = rb; r < re; ++r) {
        const uint8_t* wr = w + r * row_stride;
        float out[4] = {0, 0, 0, 0};
        switch (nt) {
          case 4: Kern::template Dot<4>(wr, n_in, ap, out); break;
          case 3: Kern::template Dot<3>(wr, n_in, ap, out); break;
          case 2: Kern::template Dot<2>(wr, n_in, ap, out); break;
          default: Kern::template Dot<1>(wr, n_in, ap, out); break;
        }
        for (int k = 0; k < nt; ++k) y[(t0 + k) * ldy + r] = out[k];
      }
    }
  }
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
