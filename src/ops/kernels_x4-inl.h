// Kernels for weights in the X4 layout (ops/pack_x4.h): Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, four rows
// interleaved per block. One copy per Highway target (included via foreach_target). On x86 with 256-bit
// integer vectors (AVX2, AVX3) a native kernel; elsewhere each group of four rows is unpacked
// to GGUF rows and run through the target's row kernels (correct, not fast: repacking is only
// chosen where the native kernel exists, see ops::repack_preferred).
#if defined(EDGELLM_OPS_X4_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef EDGELLM_OPS_X4_INL_H_
#undef EDGELLM_OPS_X4_INL_H_
#else
#define EDGELLM_OPS_X4_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hwy/highway.h"
#include "ops/kernels_gemv-inl.h"
#include "ops/pack_x4.h"
#include "ops/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

// Any target: unpack each group of four rows, then the row-major kernel on those rows.
template <class Kern, io::TensorType kType>
void GemvX4Unpacked(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                    size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> rows;
  rows.resize(4 * row_stride);
  for (int64_t g = r0 / 4; 4 * g < r1; ++g) {
    x4::unpack_group(kType, w + static_cast<size_t>(g) * 4 * row_stride, n_in, rows.data());
    const int64_t lo = std::max(r0, 4 * g) - 4 * g, hi = std::min(r1, 4 * g + 4) - 4 * g;
    Gemv<Kern>(rows.data(), row_stride, n_in, lo, hi, act, act_stride, n_tok, y + 4 * g, ldy);
  }
}

#if EDGELLM_X86_256
// A token's 32 activations of one block spread for the four rows of an X4 block: e[0] pairs
// with the low nibbles of the first 32 quant bytes (elements 0-7), e[1] with their high
// nibbles (16-23), e[2] / e[3] the same for the second 32 bytes (8-15, 24-31). Each holds
// 4 activation bytes repeated for the 4 rows, as the weights interleave rows every 4 bytes.
HWY_INLINE void ExpandX4(const BlockQ8_A* a, int64_t nb, __m256i* e) {
  const __m256i i0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), i1 = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5);
  const __m256i i2 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3), i3 = _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[ib].qs));
    e[4 * ib + 0] = _mm256_permutevar8x32_epi32(q, i0);
    e[4 * ib + 1] = _mm256_permutevar8x32_epi32(q, i1);
    e[4 * ib + 2] = _mm256_permutevar8x32_epi32(q, i2);
    e[4 * ib + 3] = _mm256_permutevar8x32_epi32(q, i3);
  }
}

// Formats with an X4 kernel, as template arguments.
enum X4Fmt { kX4Q4_0, kX4Q4_1, kX4Q8_0, kX4Q5_0, kX4Q5_1 };

// One group (4 rows) x T tokens: out[4 t + r]. Per block and token, the integer products land
// in int32 lanes [r0 r1 r2 r3 r0 r1 r2 r3], then one convert and one FMA with the four rows'
// scales. 4/5-bit: 4 maddubs summed as int16 (at most 4 * 2 * 31 * 128 = 31744 < 32767) and
// one madd; the offset (Q4_0: -8 d, Q5_0: -16 d, Q4_1/Q5_1: m) times the activation sum goes
// to a separate 4-lane FMA. Q5: the fifth bits (16 bytes, pack_x4.h) are broadcast to both
// 128-bit halves, the upper half's low nibbles moved up (one variable shift), after which
// bit 4 + k of every byte is the fifth bit of nibble vector k: one shift, and, or per vector.
// Q8_0: |w| x (a * sign w) per maddubs (pair sums up to 2 * 128 * 127 fit int16 only singly,
// so each is widened by its own madd). The same operations in the same order for every T, so a
// token's result does not depend on its batch.
template <int kFmt, int T>
HWY_INLINE void TileX4(const uint8_t* p, int64_t nb, const __m256i* const* e, const BlockQ8_A* const* a, float* out,
                       int64_t pf) {
  constexpr bool kQ8 = kFmt == kX4Q8_0, kOff = !kQ8, kQ5 = kFmt == kX4Q5_0 || kFmt == kX4Q5_1;
  constexpr bool kM = kFmt == kX4Q4_1 || kFmt == kX4Q5_1;
  // Scales, then for Q5 the fifth bits, then the quants.
  constexpr int64_t kHB = (kM ? 16 : 8) + (kQ5 ? 16 : 0), kBB = kHB + (kQ8 ? 128 : 64);
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  __m128 off[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), off[t] = _mm_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * kBB;
    if (pf)
      for (int64_t o = 0; o < kBB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(b + pf + o), _MM_HINT_T0);
    const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
    __m128 c4 = _mm_setzero_ps();
    if constexpr (kM) c4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8)));
    if constexpr (kFmt == kX4Q4_0) c4 = _mm_mul_ps(d4, _mm_set1_ps(-8.f));
    if constexpr (kFmt == kX4Q5_0) c4 = _mm_mul_ps(d4, _mm_set1_ps(-16.f));
    const __m256 d8 = _mm256_insertf128_ps(_mm256_castps128_ps256(d4), d4, 1);
    // q[k] pairs with e[k] (see ExpandX4); for Q8_0 also the signs of the weights.
    __m256i q[4], sgn[4];
    if constexpr (kQ8) {
      for (int k = 0; k < 4; ++k) {
        sgn[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHB + 32 * k));
        q[k] = _mm256_abs_epi8(sgn[k]);
      }
    } else {
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHB));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kHB + 32));
      q[0] = _mm256_and_si256(v0, low), q[1] = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
      q[2] = _mm256_and_si256(v1, low), q[3] = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
      if constexpr (kQ5) {
        const __m256i h = _mm256_sllv_epi64(
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kHB - 16))),
            _mm256_set_epi64x(4, 4, 0, 0));
        const __m256i bit4 = _mm256_set1_epi8(0x10);
        q[0] = _mm256_or_si256(q[0], _mm256_and_si256(h, bit4));
        q[1] = _mm256_or_si256(q[1], _mm256_and_si256(_mm256_srli_epi16(h, 1), bit4));
        q[2] = _mm256_or_si256(q[2], _mm256_and_si256(_mm256_srli_epi16(h, 2), bit4));
        q[3] = _mm256_or_si256(q[3], _mm256_and_si256(_mm256_srli_epi16(h, 3), bit4));
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m256i* et = e[t] + 4 * ib;
      __m256i sum;
      if constexpr (kQ8) {
        __m256i w[4];
        for (int k = 0; k < 4; ++k)
          w[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], _mm256_sign_epi8(et[k], sgn[k])), ones);
        sum = _mm256_add_epi32(_mm256_add_epi32(w[0], w[1]), _mm256_add_epi32(w[2], w[3]));
      } else {
        const __m256i s16 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(q[0], et[0]), _mm256_maddubs_epi16(q[1], et[1])),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(q[2], et[2]), _mm256_maddubs_epi16(q[3], et[3])));
        sum = _mm256_madd_epi16(s16, ones);
      }
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d8, _mm256_set1_ps(a[t][ib].d)), acc[t]);
      if constexpr (kOff) off[t] = _mm_fmadd_ps(c4, _mm_set1_ps(a[t][ib].s), off[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1));
    _mm_storeu_ps(out + 4 * t, kOff ? _mm_add_ps(sum, off[t]) : sum);
  }
}

template <int kFmt>
void GemvX4Native(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                  size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nb = n_in / 32;
  const size_t gb = 4 * row_stride;
  // Every 4 tokens stream over all the groups of [r0, r1): matmul hands out chunks of at most
  // 64 KiB, which stay in L2 for the token groups after the first.
  const int64_t g0 = r0 / 4, g1 = (r1 + 3) / 4;
  // About 4 KiB ahead of the stream (one linear stream per thread in this layout).
  const int64_t pf = 4096;
  // Expanded activations of up to 4 tokens, 32-byte aligned by hand (a vector<__m256i> built
  // by a function of another target need not honour the alignment).
  thread_local std::vector<uint8_t> ex_bytes;
  const size_t ex_need = static_cast<size_t>(4 * 4 * nb) * sizeof(__m256i) + 32;
  if (ex_bytes.size() < ex_need) ex_bytes.resize(ex_need);
  __m256i* const ex = reinterpret_cast<__m256i*>((reinterpret_cast<uintptr_t>(ex_bytes.data()) + 31) & ~uintptr_t{31});
  for (int64_t t0 = 0; t0 < n_tok; t0 += 4) {
    const int nt = static_cast<int>(std::min<int64_t>(4, n_tok - t0));
    const BlockQ8_A* ap[4];
    const __m256i* ep[4];
    for (int k = 0; k < nt; ++k) {
      ap[k] = reinterpret_cast<const BlockQ8_A*>(act + (t0 + k) * act_stride);
      ExpandX4(ap[k], nb, ex + 4 * nb * k);
      ep[k] = ex + 4 * nb * k;
    }
    for (int64_t g = g0; g < g1; ++g) {
      const uint8_t* p = w + static_cast<size_t>(g) * gb;
      float out[16];
      switch (nt) {
        case 4: TileX4<kFmt, 4>(p, nb, ep, ap, out, t0 == 0 ? pf : 0); break;
        case 3: TileX4<kFmt, 3>(p, nb, ep, ap, out, t0 == 0 ? pf : 0); break;
        case 2: TileX4<kFmt, 2>(p, nb, ep, ap, out, t0 == 0 ? pf : 0); break;
        default: TileX4<kFmt, 1>(p, nb, ep, ap, out, t0 == 0 ? pf : 0); break;
      }
      const int64_t lo = std::max(r0, 4 * g), hi = std::min(r1, 4 * g + 4);
      for (int k = 0; k < nt; ++k)
        for (int64_t r = lo; r < hi; ++r) y[(t0 + k) * ldy + r] = out[4 * k + (r - 4 * g)];
    }
  }
}
#endif  // EDGELLM_X86_256

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
