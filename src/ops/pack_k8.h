#pragma once
// The K8 weight layout for Q4_K and Q6_K: eight rows interleaved per 256-element super-block,
// with scales and mins unpacked to bytes, so that the AVX2 kernel multiplies a 32-byte vector
// (4 consecutive elements of each of the 8 rows) by one 4-byte broadcast of the activations:
// the int32 lanes after maddubs + madd are the eight rows [r0 .. r7], the sub-block scale is
// the madd's second operand, and no per-block shuffles, gathers or horizontal adds remain.
//
// Rows n_in = 256 * nb, groups of 8 rows (the last group repeats its last row). Quants: q[j][v]
// (sub-block j of 32, v = 0..7) is the 32 bytes "element 32 j + 4 v + i % 4 of row i / 4" for
// i = 0..31; nibble vector n[j][p] (p = 0..3) holds q[j][2p] in its low and q[j][2p+1] in its
// high nibbles. Per super-block of a group:
//  - Q4_K, 1184 bytes (rows: 1152): d[8], dmin[8] (fp16), scales (64: for each pair of
//    sub-blocks j = 2P, 2P+1 the 16 bytes [sc_j r0-3, sc_j+1 r0-3, sc_j r4-7, sc_j+1 r4-7], so
//    a zero-extension to int16 and unpacklo/unpackhi give both sub-blocks' madd operands), mins
//    (64: mn[j][r]), n[8][4] (1024: sub-block j at 160 + 128 j).
//  - Q6_K, 1680 bytes (= rows): d[8] (fp16), scales (128: per sub-block j of 32 the 16 bytes
//    [sc_2j r0-3, sc_2j+1 r0-3, sc_2j r4-7, sc_2j+1 r4-7] of the 16-element scales, signed),
//    then per sub-block j 192 bytes: n[j][4] (128) with the low 4 bits, h[j][2] (64): bits 2k,
//    2k+1 of h[j][g] are bits 4, 5 of q[j][4g + k]. A sub-block's bytes are adjacent so that a
//    one-token pass reads the group as one ascending stream (the hardware prefetchers lost
//    track of the earlier layout's two, all n then all h: one token streamed ~1.5x slower).
#include <cstddef>
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops::k8 {

constexpr int kRows = 8;

// Whether `t` has a K8 layout (Q4_K, Q6_K).
bool packable(io::TensorType t);
// Bytes of one K8 super-block of a group (8 rows x 256 elements).
size_t block_bytes(io::TensorType t);
// Bytes of one group of 8 rows of n_in elements.
size_t group_bytes(io::TensorType t, int64_t n_in);
// Rows [8g, 8g + 8) of a row-major matrix (n_out rows, row_stride bytes apart) -> group g.
void pack_group(io::TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst);
// Group g -> its eight rows in GGUF layout, row j at dst + j * row_bytes(t, n_in).
void unpack_group(io::TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst);

}  // namespace edgellm::ops::k8
