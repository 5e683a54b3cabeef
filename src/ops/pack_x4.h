#pragma once
// The X4 weight layout: four rows interleaved block by block, so that the AVX2 kernel loads a
// block's four scales with one 8-byte load and its quants with two 32-byte loads whose
// int32 lanes after the multiply are [r0 r1 r2 r3 r0 r1 r2 r3]. That removes the per-block
// scale gathers and horizontal adds of the row-major tile, which made the 4-bit kernels
// arithmetic-bound at ~22 GB/s, below the memory bandwidth they should be limited by.
//
// For Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, rows n_in = 32 * nb, groups of 4 rows (the last group
// repeats its last row). Group g takes nb * 4 * block_bytes bytes: for each block, the four
// rows' d (fp16, 8 bytes), for Q4_1/Q5_1 their m (8 bytes), for Q5 their fifth bits (16 bytes,
// below), then the quants, rows interleaved every 4 bytes: in each 32 bytes, 4-byte group q
// (0..7) belongs to row q % 4.
//  - Q4/Q5, 64 bytes: byte k has half = k / 32, i = k % 32, row r = (i / 4) % 4 and element
//    e = 8 * half + 4 * (i / 16) + i % 4 in its low nibble, element e + 16 in its high nibble
//    (as in GGUF, where byte j of a block holds elements j and j + 16).
//  - Q8_0, 128 bytes: byte k has v = k / 32, i = k % 32, row r = (i / 4) % 4 and element
//    base[v] + 4 * (i / 16) + i % 4 with base = {0, 16, 8, 24}, the order in which the Q4
//    nibble vectors come (low 0-7, high 16-23, low 8-15, high 24-31), so one expansion of the
//    activations serves both.
//  - Q5 fifth bits, by the nibble vector they complete (q[0..3] = low / high nibbles of quant
//    bytes 0-31, low / high of 32-63, byte i of q[v] from quant byte 32 * (v / 2) + i): bit b of
//    byte s is the fifth bit of byte s of q[b - 4] for b >= 4, of byte 16 + s of q[b] for b < 4.
//    Broadcast to both 128-bit halves, the upper half shifted left 4: then bit 4 + v of every
//    byte belongs to q[v], and a shift right by v, an and and an or complete it.
#include <cstddef>
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops::x4 {

// Whether `t` has an X4 layout (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
bool packable(io::TensorType t);
// Bytes of one X4 group of four rows of n_in elements (4 * row_bytes).
size_t group_bytes(io::TensorType t, int64_t n_in);
// Rows [4g, 4g + 4) of a row-major matrix (n_out rows, row_stride bytes apart) -> group g.
void pack_group(io::TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst);
// Group g -> its four rows in GGUF layout, row j at dst + j * row_bytes(t, n_in).
void unpack_group(io::TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst);

}  // namespace edgellm::ops::x4
