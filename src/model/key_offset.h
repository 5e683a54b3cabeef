#pragma once
// A fixed vector subtracted from every key before a block-quantized (q8_0, q4_0) cache stores
// it. Qwen2's key bias puts values of 100-160 in a few channels of some layers, so a 32-element
// block holding one of them gets a step of ~1 and the ordinary channels beside it lose most of
// their bits: q8_0 keys cost Qwen2.5-Coder-0.5B 5.8% perplexity (KL 0.019), an error the NumPy
// reference reproduces, so it is the format's and not a kernel's.
//
// Subtracting the same vector c from every key of a layer and KV head changes every score of
// a query by the same q.c, which softmax ignores: attention is unchanged exactly, only what
// the blocks must represent shrinks. This does not hold under an attention soft-cap (tanh is
// not shift-invariant), so such models get no offset. c is the bias as RoPE moves it, averaged
// over the first kOffsetPositions positions: the slow channels that carry the large biases
// barely rotate and are removed almost whole; fast ones average to ~0 and are left alone.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace edgellm::model {

constexpr int32_t kOffsetPositions = 4096;

// bk: per layer the key bias [kv_dim] (empty vectors or an empty list: no bias). Returns
// [n_layer * kv_dim], or empty when the model gets no offset (no key bias, a soft-cap, or
// per-head key norms, which come after the bias).
std::vector<float> key_offsets(const ModelConfig& config, const std::vector<std::vector<float>>& bk);

}  // namespace edgellm::model
