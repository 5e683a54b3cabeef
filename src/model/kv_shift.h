#pragma once
// Context shift: drop a span of positions from a KV cache and move the ones after it down,
// re-rotating their keys to the new positions instead of recomputing them (llama.cpp's
// context shift). A key stored at position p is R(p)·k; rotating it by R(-n) gives R(p-n)·k
// because RoPE rotations compose, so only the angle of the move is needed, not the key's
// unrotated value. Values carry no position and move as stored bytes.
#include <cstdint>

#include "model/config.h"
#include "model/kv_cache.h"

namespace edgellm::model {

// Removes positions [first, first + n) and moves [first + n, size) to [first, size - n).
// Keys of quantized types are dequantized, rotated and requantized (a second rounding, as in
// llama.cpp). Throws InvalidArgument unless 0 <= first, n >= 0 and first + n <= size.
void shift_kv_cache(const ModelConfig& config, KvCache& cache, int32_t first, int32_t n);

}  // namespace edgellm::model
