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
#include "ops/ops.h"
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
// flip: stored as a + 128 (unsigned), for TileX4Vnni's Q8_0 products.
HWY_INLINE void ExpandX4(const BlockQ8_A* a, int64_t nb, __m256i* e, bool flip = false) {
  const __m256i i0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), i1 = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5);
  const __m256i i2 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3), i3 = _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7);
  for (int64_t ib = 0; ib < nb; ++ib) {
    __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[ib].qs));
    if (flip) q = _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
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
template <int kFmt>
struct X4Traits {
  static constexpr bool kQ8 = kFmt == kX4Q8_0, kOff = !kQ8, kQ5 = kFmt == kX4Q5_0 || kFmt == kX4Q5_1;
  static constexpr bool kM = kFmt == kX4Q4_1 || kFmt == kX4Q5_1;
  // Scales, then for Q5 the fifth bits, then the quants.
  static constexpr int64_t kHB = (kM ? 16 : 8) + (kQ5 ? 16 : 0), kBB = kHB + (kQ8 ? 128 : 64);
};

// One block's four rows: scales d8 (twice), offsets c4, and the quants q[k] that pair with e[k]
// (see ExpandX4); for Q8_0 q[k] = |w| and sgn[k] = w.
template <int kFmt>
HWY_INLINE void LoadX4Block(const uint8_t* b, __m256& d8, __m128& c4, __m256i* q, __m256i* sgn) {
  using X = X4Traits<kFmt>;
  const __m128 d4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
  c4 = _mm_setzero_ps();
  if constexpr (X::kM) c4 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 8)));
  if constexpr (kFmt == kX4Q4_0) c4 = _mm_mul_ps(d4, _mm_set1_ps(-8.f));
  if constexpr (kFmt == kX4Q5_0) c4 = _mm_mul_ps(d4, _mm_set1_ps(-16.f));
  d8 = _mm256_insertf128_ps(_mm256_castps128_ps256(d4), d4, 1);
  if constexpr (X::kQ8) {
    for (int k = 0; k < 4; ++k) {
      sgn[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + X::kHB + 32 * k));
      q[k] = _mm256_abs_epi8(sgn[k]);
    }
  } else {
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + X::kHB));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + X::kHB + 32));
    q[0] = _mm256_and_si256(v0, low), q[1] = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low);
    q[2] = _mm256_and_si256(v1, low), q[3] = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low);
    if constexpr (X::kQ5) {
      const __m256i h = _mm256_sllv_epi64(
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + X::kHB - 16))),
          _mm256_set_epi64x(4, 4, 0, 0));
      const __m256i bit4 = _mm256_set1_epi8(0x10);
      q[0] = _mm256_or_si256(q[0], _mm256_and_si256(h, bit4));
      q[1] = _mm256_or_si256(q[1], _mm256_and_si256(_mm256_srli_epi16(h, 1), bit4));
      q[2] = _mm256_or_si256(q[2], _mm256_and_si256(_mm256_srli_epi16(h, 2), bit4));
      q[3] = _mm256_or_si256(q[3], _mm256_and_si256(_mm256_srli_epi16(h, 3), bit4));
    }
  }
}

// A token's int32 block sum into its float accumulators: the part every tile shares, in one
// order, so the maddubs and the VNNI tiles give bitwise the same results.
template <bool kOff>
HWY_INLINE void AccumulateX4(__m256i sum, __m256 d8, __m128 c4, const BlockQ8_A& a, __m256& acc, __m128& off) {
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d8, _mm256_set1_ps(a.d)), acc);
  if constexpr (kOff) off = _mm_fmadd_ps(c4, _mm_set1_ps(a.s), off);
}

template <bool kOff>
HWY_INLINE void StoreX4(__m256 acc, __m128 off, float* out) {
  const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  _mm_storeu_ps(out, kOff ? _mm_add_ps(sum, off) : sum);
}

template <int kFmt, int T>
HWY_INLINE void TileX4(const uint8_t* p, int64_t nb, const __m256i* const* e, const BlockQ8_A* const* a, float* out,
                       int64_t pf) {
  using X = X4Traits<kFmt>;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[T];
  __m128 off[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), off[t] = _mm_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* b = p + ib * X::kBB;
    if (pf)
      for (int64_t o = 0; o < X::kBB; o += 64) _mm_prefetch(reinterpret_cast<const char*>(b + pf + o), _MM_HINT_T0);
    __m256 d8;
    __m128 c4;
    __m256i q[4], sgn[4];
    LoadX4Block<kFmt>(b, d8, c4, q, sgn);
    for (int t = 0; t < T; ++t) {
      const __m256i* et = e[t] + 4 * ib;
      __m256i sum;
      if constexpr (X::kQ8) {
        __m256i w[4];
        for (int k = 0; k < 4; ++k)
          w[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], _mm256_sign_epi8(et[k], sgn[k])), ones);
        sum = _mm256_add_epi32(_mm256_add_epi32(w[0], w[1]), _mm256_add_epi32(w[2], w[3]));
      } else {
        const __m256i s16 = _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(q[0], et[0]), _mm256_maddubs_epi16(q[1], et[1])),
                                             _mm256_add_epi16(_mm256_maddubs_epi16(q[2], et[2]), _mm256_maddubs_epi16(q[3], et[3])));
        sum = _mm256_madd_epi16(s16, ones);
      }
      AccumulateX4<X::kOff>(sum, d8, c4, a[t][ib], acc[t], off[t]);
    }
  }
  for (int t = 0; t < T; ++t) StoreX4<X::kOff>(acc[t], off[t], out + 4 * t);
}

#undef EDGELLM_X4_VNNI
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define EDGELLM_X4_VNNI 1
// TileX4 for two groups at once (8 rows: group A in the low 256 bits of each vector, group B in
// the high) with AVX-512 VNNI, up to 8 tokens. A token's products of one block for 8 rows are 4
// dpbusd instead of 2 x (4 maddubs + 3 adds + madd), and its float steps (convert, scale, FMA)
// cover 8 rows per instruction instead of 4: prefill and batched decode of the X4 formats are
// compute-bound, and the 256-bit tile spent as much on the float steps as on the products.
// Every lane takes TileX4's operations in TileX4's order (int32 sums are exact in any order;
// TileX4's int16 sums never saturate), so results are bitwise TileX4's. A lone group is passed
// as both A and B. pf: prefetch distance past each of the two streams (0: none). Its target is
// this Highway target's plus VNNI, so the helpers shared with TileX4 inline (clang requires
// every feature of an always_inline callee, pclmul and aes included).
template <int kFmt, int T>
__attribute__((target(HWY_TARGET_STR ",avx512vnni"), noinline)) void TileX4Vnni(
    const uint8_t* pa, const uint8_t* pb, int64_t nb, const __m256i* const* e, const BlockQ8_A* const* a,
    float* out, int64_t pf) {
  using X = X4Traits<kFmt>;
  __m512 acc[T];
  __m256 off[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps(), off[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* ba = pa + ib * X::kBB;
    const uint8_t* bb = pb + ib * X::kBB;
    if (pf)
      for (int64_t o = 0; o < X::kBB; o += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(ba + pf + o), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bb + pf + o), _MM_HINT_T0);
      }
    __m256 da, db;
    __m128 ca, cb;
    __m256i qa[4], qb[4], sa[4], sb[4];
    LoadX4Block<kFmt>(ba, da, ca, qa, sa);
    LoadX4Block<kFmt>(bb, db, cb, qb, sb);
    const __m512 d16 = _mm512_insertf32x8(_mm512_castps256_ps512(da), db, 1);
    const __m256 c8 = _mm256_insertf128_ps(_mm256_castps128_ps256(ca), cb, 1);
    // Q8_0: the signed weights are dpbusd's signed operand and the activations come as a + 128
    // (ExpandX4's flip), so each product carries 128 w, taken off once per token from the
    // block's 128 * sum(w) per lane: the same exact int32 as TileX4's |w| x (a * sign w).
    __m512i q[4], w128 = _mm512_setzero_si512();
    for (int k = 0; k < 4; ++k) {
      if constexpr (X::kQ8) {
        q[k] = _mm512_inserti64x4(_mm512_castsi256_si512(sa[k]), sb[k], 1);
        w128 = _mm512_dpbusd_epi32(w128, _mm512_set1_epi8(1), q[k]);
      } else {
        q[k] = _mm512_inserti64x4(_mm512_castsi256_si512(qa[k]), qb[k], 1);
      }
    }
    if constexpr (X::kQ8) w128 = _mm512_slli_epi32(w128, 7);
    for (int t = 0; t < T; ++t) {
      const __m256i* et = e[t] + 4 * ib;
      // Two chains of two (dpbusd's latency), added once.
      __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
      __m512i x[4];
      for (int k = 0; k < 4; ++k) x[k] = _mm512_broadcast_i64x4(_mm256_load_si256(et + k));
      if constexpr (X::kQ8) {
        s0 = _mm512_dpbusd_epi32(s0, x[0], q[0]);
        s1 = _mm512_dpbusd_epi32(s1, x[1], q[1]);
        s0 = _mm512_dpbusd_epi32(s0, x[2], q[2]);
        s1 = _mm512_dpbusd_epi32(s1, x[3], q[3]);
        s1 = _mm512_sub_epi32(s1, w128);
      } else {
        s0 = _mm512_dpbusd_epi32(s0, q[0], x[0]);
        s1 = _mm512_dpbusd_epi32(s1, q[1], x[1]);
        s0 = _mm512_dpbusd_epi32(s0, q[2], x[2]);
        s1 = _mm512_dpbusd_epi32(s1, q[3], x[3]);
      }
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_mul_ps(d16, _mm512_set1_ps(a[t][ib].d)),
                               acc[t]);
      if constexpr (X::kOff) off[t] = _mm256_fmadd_ps(c8, _mm256_set1_ps(a[t][ib].s), off[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    StoreX4<X::kOff>(_mm512_castps512_ps256(acc[t]), _mm256_castps256_ps128(off[t]), out + 8 * t);
    StoreX4<X::kOff>(_mm512_extractf32x8_ps(acc[t], 1), _mm256_extractf128_ps(off[t], 1), out + 8 * t + 4);
  }
}
#else
#define EDGELLM_X4_VNNI 0
#endif

template <int kFmt>
void GemvX4Native(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1, const uint8_t* act,
                  size_t act_stride, int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nb = n_in / 32;
  const size_t gb = 4 * row_stride;
  // Every tile of tokens streams over all the groups of [r0, r1): matmul hands out chunks of at
  // most 256 KiB, which stay in L2 for the token tiles after the first.
  const int64_t g0 = r0 / 4, g1 = (r1 + 3) / 4;
  // About 4 KiB ahead of the stream (one linear stream per thread in this layout).
  const int64_t pf = 4096;
#if EDGELLM_X4_VNNI
  const bool vnni = use_vnni();
#else
  constexpr bool vnni = false;
#endif
  const int64_t tile_tokens = vnni ? 8 : 4;
  // Expanded activations of up to 8 tokens, 32-byte aligned by hand (a vector<__m256i> built
  // by a function of another target need not honour the alignment).
  thread_local std::vector<uint8_t> ex_bytes;
  const size_t ex_need = static_cast<size_t>(tile_tokens * 4 * nb) * sizeof(__m256i) + 32;
  if (ex_bytes.size() < ex_need) ex_bytes.resize(ex_need);
  __m256i* const ex = reinterpret_cast<__m256i*>((reinterpret_cast<uintptr_t>(ex_bytes.data()) + 31) & ~uintptr_t{31});
  for (int64_t t0 = 0; t0 < n_tok; t0 += tile_tokens) {
    const int nt = static_cast<int>(std::min<int64_t>(tile_tokens, n_tok - t0));
    const BlockQ8_A* ap[8];
    const __m256i* ep[8];
    for (int k = 0; k < nt; ++k) {
      ap[k] = reinterpret_cast<const BlockQ8_A*>(act + (t0 + k) * act_stride);
      ExpandX4(ap[k], nb, ex + 4 * nb * k, kFmt == kX4Q8_0 && vnni && nt > 1);
      ep[k] = ex + 4 * nb * k;
    }
    for (int64_t g = g0; g < g1;) {
      const uint8_t* p = w + static_cast<size_t>(g) * gb;
      const int64_t pft = t0 == 0 ? pf : 0;
      float out[64];
      int ng = 1;         // groups done by this step
      int64_t stride = 4;  // out's rows per token: the VNNI tile writes 8 (a lone group's twice)
#if EDGELLM_X4_VNNI
      // One token reads the weights once whatever the tile (memory-bound), and there the paired
      // tile's two streams measured slower than TileX4's one (0.5B tg32 about -25% on Zen 4).
      if (vnni && nt > 1) {
        ng = g + 1 < g1 ? 2 : 1, stride = 8;
        const uint8_t* pb = ng == 2 ? p + gb : p;
        // Two streams gb apart: one pair ahead covers both (up to three quarters of L1).
        const int64_t pfp = t0 != 0 ? 0 : 2 * static_cast<int64_t>(gb) <= 24576 ? 2 * static_cast<int64_t>(gb) : pf;
        switch (nt) {
          case 8: TileX4Vnni<kFmt, 8>(p, pb, nb, ep, ap, out, pfp); break;
          case 7: TileX4Vnni<kFmt, 7>(p, pb, nb, ep, ap, out, pfp); break;
          case 6: TileX4Vnni<kFmt, 6>(p, pb, nb, ep, ap, out, pfp); break;
          case 5: TileX4Vnni<kFmt, 5>(p, pb, nb, ep, ap, out, pfp); break;
          case 4: TileX4Vnni<kFmt, 4>(p, pb, nb, ep, ap, out, pfp); break;
          case 3: TileX4Vnni<kFmt, 3>(p, pb, nb, ep, ap, out, pfp); break;
          default: TileX4Vnni<kFmt, 2>(p, pb, nb, ep, ap, out, pfp); break;
        }
      } else
#endif
      {
        switch (nt) {
          case 4: TileX4<kFmt, 4>(p, nb, ep, ap, out, pft); break;
          case 3: TileX4<kFmt, 3>(p, nb, ep, ap, out, pft); break;
          case 2: TileX4<kFmt, 2>(p, nb, ep, ap, out, pft); break;
          default: TileX4<kFmt, 1>(p, nb, ep, ap, out, pft); break;
        }
      }
      const int64_t lo = std::max(r0, 4 * g), hi = std::min(r1, 4 * (g + ng));
      for (int k = 0; k < nt; ++k)
        for (int64_t r = lo; r < hi; ++r) y[(t0 + k) * ldy + r] = out[stride * k + (r - 4 * g)];
      g += ng;
    }
  }
}
#endif  // EDGELLM_X86_256

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard
