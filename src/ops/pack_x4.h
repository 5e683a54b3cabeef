#pragma once
// The X4 weight layout: four rows interleaved block by block, so that the AVX2 kernel loads a
// block's four scales with one 8-byte load and its quants with two 32-byte loads whose
// int32 lanes after the multiply are [r0 r1 r2 r3 r0 r1 r2 r3]. That removes the per-block
// scale gathers and horizontal adds of the row-major tile, which made the 4-bit kernels
// arithmetic-bound at ~22 GB/s, below the memory bandwidth they should be limited by.
//
// For Q4_0 / Q4_1, rows n_in = 32 * nb, groups of 4 rows (the last group repeats its last
// row). Group g takes nb * 4 * block_bytes bytes: for each block, the four rows' d (fp16, 8
// bytes), for Q4_1 their m (8 bytes), then 64 bytes of nibbles. Quant byte k of a block:
// half = k / 32, j = k % 32, row r = (j / 4) % 4, element e = 8 * half + 4 * (j / 16) + j % 4;
// its low nibble is element e of row r and its high nibble element e + 16 (as in GGUF, where
// byte j of a block holds elements j and j + 16).
#include <cstddef>
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops::x4 {

// Whether `t` has an X4 layout.
bool packable(io::TensorType t);
// Bytes of one X4 group of four rows of n_in elements (4 * row_bytes).
size_t group_bytes(io::TensorType t, int64_t n_in);
// Rows [4g, 4g + 4) of a row-major matrix (n_out rows, row_stride bytes apart) -> group g.
void pack_group(io::TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst);
// Group g -> its four rows in GGUF layout, row j at dst + j * row_bytes(t, n_in).
void unpack_group(io::TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst);

}  // namespace edgellm::ops::x4
