#pragma once
// The X16 weight layout: Q5_0 and Q8_0 with sixteen rows interleaved per 32-element block, for
// AVX-512 VNNI: one 64-byte vector holds 4 consecutive quants of each of the 16 rows (byte
// 4 r + j: row r, element 4 s + j of step s), so one vpdpbusd with a token's 4 activation bytes
// broadcast adds 64 products into the 16 rows' int32 lanes, and one convert + one FMA per block
// and token applies the rows' scales (the X4 tile needed them every 4 products, with two lanes
// per row). Chosen at load instead of X4 where the VNNI kernel runs (ops::repack); other ISAs
// unpack groups to rows, so forcing an ISA after loading stays correct. Same size as the rows.
//
// Rows n_in = 32 * nb, groups of 16 rows (the last group repeats its last row). Per block:
//  - Q5_0 (352 bytes): d x16 (fp16, 32 bytes); fifth bits, 8 x 64-bit masks (mask s, bit 4 r + j:
//    element 4 s + j of row r); quants 4 x 64 bytes: vector v, byte 4 r + j is byte 4 v + j of
//    row r's GGUF block (low nibble element 4 v + j, high nibble element 16 + 4 v + j), so the low
//    nibbles are step v and the high nibbles step v + 4.
//  - Q8_0 (544 bytes): d x16 (32 bytes); quants 8 x 64 bytes, step s byte 4 r + j = element
//    4 s + j of row r.
#include <cstddef>
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops::x16 {

constexpr int kRows = 16;
// Whether `t` has an X16 layout (Q5_0, Q8_0).
bool packable(io::TensorType t);
// Bytes of one group of 16 rows of n_in elements (16 * row_bytes).
size_t group_bytes(io::TensorType t, int64_t n_in);
// Rows [16g, 16g + 16) of a row-major matrix (n_out rows, row_stride bytes apart) -> group g.
void pack_group(io::TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst);
// Group g -> its 16 rows in GGUF layout, row j at dst + j * row_bytes(t, n_in).
void unpack_group(io::TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst);

}  // namespace edgellm::ops::x16
