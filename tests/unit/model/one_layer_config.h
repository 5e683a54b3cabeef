#pragma once
// The model shape the key-offset and key-scale tests share: one layer, two query heads on one
// KV head, full NeoX RoPE with Qwen2's base and Qwen2's q/k/v biases.
#include <cstdint>

#include "model/config.h"

namespace edgellm::model {

inline ModelConfig one_layer_qwen2_like_config(int32_t head_dim) {
  ModelConfig c;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = head_dim;
  c.n_rot = head_dim;
  c.rope_neox = true;
  c.rope_base = 1e6f;
  c.qkv_bias = true;
  c.layer_swa = {false};
  return c;
}

}  // namespace edgellm::model
