// Kernels for Q5_0 / Q8_0 weights in the X16 layout (ops/pack_x16.h), one copy per Highway
// target (included via foreach_target). AVX3 with AVX-512 VNNI at run time: TileX16; everywhere
// else each group of 16 rows is unpacked to GGUF rows and run through the target's row kernels
// (correct, not fast: the layout is only chosen where TileX16 runs, see ops::repack).
#if defined(EDGELLM_OPS_X16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_X16_INL_H_
#undef EDGELLM_OPS_X16_INL_H_
#else
#define EDGELLM_OPS_X16_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "hwy/highway.h"
#include "ops/kernels_gemv-inl.h"
#include "ops/kernels_quant-inl.h"
#include "ops/ops.h"
#include "ops/pack_x16.h"
#include "ops/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

template <class Kern, io::TensorType kType>
void GemvX16Unpacked(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                     size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  constexpr int R = x16::kRows;
  thread_local std::vector<uint8_t> rows;
  rows.resize(R * row_stride);
  for (int64_t g = r0 / R; R * g < r1; ++g) {
    x16::unpack_group(kType, w + static_cast<size_t>(g) * R * row_stride, n_in, rows.data());
    const int64_t lo = std::max(r0, R * g) - R * g, hi = std::min(r1, R * g + R) - R * g;
    Gemv<Kern>(rows.data(), row_stride, n_in, lo, hi, act, act_stride, n_tok, y + R * g, ldy);
  }
}

#undef EDGELLM_X16_VNNI
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define EDGELLM_X16_VNNI 1
// One group (16 rows) x T tokens: out[16 t + r]. Per block and token 8 vpdpbusd (the token's 4
// activation bytes of each step broadcast from memory) into one int32 vector of the 16 rows,
// then one convert and one FMA with the rows' scales times the token's scale. The offsets are
// integer and start the sum: Q5_0 (unsigned quants 0..31 x signed activations) starts at
// -16 * sum(a) (bias[t][ib]); Q8_0 (activations as a + 128, unsigned, x signed weights) at
// -128 * sum(w) per row, from 8 more vpdpbusd per block shared by the tokens. The float steps
// per (row, token) do not depend on T, so a token's result does not depend on its batch.
// pf: prefetch distance (0: none).
template <bool kQ8, int T>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"), noinline)) void TileX16(
    const uint8_t* p, int64_t nb, const BlockQ8_A* const* a, const uint8_t* const* ex, float* out, int64_t pf) {
  constexpr int64_t kBB = kQ8 ? 544 : 352;
  __m512 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(0x10);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * kBB;
    if (pf)
#pragma GCC unroll 9
      for (int64_t o = 0; o < kBB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(b + pf + o), _MM_HINT_T0);
    const __m512 d16 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
    __m512i q[8], start = _mm512_setzero_si512();
    if constexpr (kQ8) {
      __m512i w = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        q[s] = _mm512_loadu_si512(b + 32 + 64 * s);
        w = _mm512_dpbusd_epi32(w, _mm512_set1_epi8(1), q[s]);
      }
      start = _mm512_sub_epi32(start, _mm512_slli_epi32(w, 7));
    } else {
#pragma GCC unroll 4
      for (int s = 0; s < 4; ++s) {
        const __m512i v = _mm512_loadu_si512(b + 96 + 64 * s);
        q[s] = _mm512_and_si512(v, low);
        q[s + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        __mmask64 m;
        std::memcpy(&m, b + 32 + 8 * s, 8);
        q[s] = _mm512_mask_add_epi8(q[s], m, q[s], b16);
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      // Q8_0: ex[t] holds the token's quants + 128 (32 bytes per block); Q5_0: -16 * sum per block.
      __m512i s0;
      const uint8_t* x;
      if constexpr (kQ8) {
        s0 = start, x = ex[t] + 32 * ib;
      } else {
        int32_t bias;
        std::memcpy(&bias, ex[t] + 4 * ib, 4);
        s0 = _mm512_set1_epi32(bias), x = reinterpret_cast<const uint8_t*>(a[t][ib].qs);
      }
#pragma GCC unroll 8
      for (int s = 0; s < 8; ++s) {
        int32_t v;
        std::memcpy(&v, x + 4 * s, 4);
        s0 = kQ8 ? _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(v), q[s]) : _mm512_dpbusd_epi32(s0, q[s], _mm512_set1_epi32(v));
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(d16, _mm512_set1_ps(a[t][ib].d)), acc[t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

template <bool kQ8>
void GemvX16Native(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                   size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  constexpr io::TensorType kType = kQ8 ? io::TensorType::Q8_0 : io::TensorType::Q5_0;
  if (!use_vnni()) {
    GemvX16Unpacked<LegacyKern<std::conditional_t<kQ8, FmtQ8_0, FmtQ5_0>>, kType>(w, row_stride, n_in, r0, r1, act, act_stride, n_tok, y,
                                                                ldy);
    return;
  }
  constexpr int R = x16::kRows;
  const int64_t nb = n_in / 32;
  const size_t gb = R * row_stride;
  const int64_t g0 = r0 / R, g1 = (r1 + R - 1) / R;
  // Per token: Q8_0 its quants + 128 (32 bytes per block), Q5_0 -16 * sum of its quants (4 bytes).
  const int64_t ex_tok = kQ8 ? 32 * nb : 4 * nb;
  thread_local std::vector<uint8_t> ex_bytes;
  for (int64_t t0 = 0; t0 < n_tok; t0 += 8) {
    const int nt = static_cast<int>(std::min<int64_t>(8, n_tok - t0));
    if (ex_bytes.size() < static_cast<size_t>(8 * ex_tok)) ex_bytes.resize(static_cast<size_t>(8 * ex_tok));
    const BlockQ8_A* ap[8];
    const uint8_t* ep[8];
    for (int k = 0; k < nt; ++k) {
      ap[k] = reinterpret_cast<const BlockQ8_A*>(act + (t0 + k) * act_stride);
      uint8_t* e = ex_bytes.data() + k * ex_tok;
      for (int64_t ib = 0; ib < nb; ++ib) {
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ap[k][ib].qs));
        if constexpr (kQ8) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + 32 * ib), _mm256_xor_si256(qv, _mm256_set1_epi8(-128)));
        } else {
          // Sum of 32 int8: maddubs with ones (|sums| <= 256 fit int16), madd, horizontal add.
          const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), qv);
          const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
          __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
          h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
          h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
          const int32_t bias = -16 * _mm_cvtsi128_si32(h);
          std::memcpy(e + 4 * ib, &bias, 4);
        }
      }
      ep[k] = e;
    }
    // One token is memory-bound and streamed faster without software prefetch; batches with
    // it (4 KiB ahead, first token tile only: later tiles read the chunk from L2).
    const int64_t pf = n_tok > 1 && t0 == 0 ? 4096 : 0;
    for (int64_t g = g0; g < g1; ++g) {
      const uint8_t* p = w + static_cast<size_t>(g) * gb;
      float out[128];
      switch (nt) {
        case 8: TileX16<kQ8, 8>(p, nb, ap, ep, out, pf); break;
        case 7: TileX16<kQ8, 7>(p, nb, ap, ep, out, pf); break;
        case 6: TileX16<kQ8, 6>(p, nb, ap, ep, out, pf); break;
        case 5: TileX16<kQ8, 5>(p, nb, ap, ep, out, pf); break;
        case 4: TileX16<kQ8, 4>(p, nb, ap, ep, out, pf); break;
        case 3: TileX16<kQ8, 3>(p, nb, ap, ep, out, pf); break;
        case 2: TileX16<kQ8, 2>(p, nb, ap, ep, out, pf); break;
        default: TileX16<kQ8, 1>(p, nb, ap, ep, out, pf); break;
      }
      const int64_t lo = std::max(r0, R * g), hi = std::min(r1, R * (g + 1));
      for (int k = 0; k < nt; ++k)
        std::memcpy(y + (t0 + k) * ldy + lo, out + 16 * k + (lo - R * g), static_cast<size_t>(hi - lo) * sizeof(float));
    }
  }
}
#else
#define EDGELLM_X16_VNNI 0
#endif

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
