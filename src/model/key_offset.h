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
//
// The bias is not the whole constant part of a key: W_k times the mean normed input adds
// its own (Qwen2.5-Coder-0.5B layer 0: 40 in a slow channel; 38 rms in its fastest pair, which
// rotates, so no offset removes it). So when the model loads, a short calibration pass
// (kCalibrationTokens fixed pseudo-random tokens, model.cpp) measures the keys before RoPE:
// their mean replaces the bias above, and channels whose rms around the offset stands far
// above their head's median get a scale s > 1. The cache stores (k - c) / s, and attention
// multiplies the query by s: q.(k - c) = (q * s).((k - c) / s), so the dot product is the
// same while one outlier no longer sets its block's step (the other 31 channels keep their
// bits). Only outliers are scaled (s = max(1, rms / (kScaleHeadroom * median))): scaling
// every channel to the same rms made the ordinary layers' scores no better.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace edgellm::model {

constexpr int32_t kOffsetPositions = 4096;
constexpr int32_t kCalibrationTokens = 32;
constexpr float kScaleHeadroom = 2.0f;

struct KeyCalibration {
  std::vector<float> offset;  // [n_layer * kv_dim], empty: none
  std::vector<float> scale;   // [n_layer * kv_dim] (>= 1), empty: none
};

// bk: per layer the key bias [kv_dim] (empty vectors or an empty list: no bias). Returns
// [n_layer * kv_dim], or empty when the model gets no offset (no key bias, a soft-cap, or
// per-head key norms, which come after the bias).
std::vector<float> key_offsets(const ModelConfig& config, const std::vector<std::vector<float>>& bk);

// keys: per layer the keys before RoPE of n_pos calibration positions ([n_pos][kv_dim], bias
// included). Returns the offset (key_offsets of their mean) and the outlier scales; both empty
// when the model gets no offset (key_offsets' conditions) or n_pos < 1.
KeyCalibration calibrate_keys(const ModelConfig& config, const std::vector<std::vector<float>>& keys, int32_t n_pos);

}  // namespace edgellm::model
