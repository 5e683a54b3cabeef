#pragma once
// What the key-offset and key-scale tests share: the model shape (one layer, two query heads on
// one KV head, full NeoX RoPE with Qwen2's base and Qwen2's q/k/v biases) and the error of
// attention over a quantized key cache against fp32 keys.
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"
#include "ops/ops.h"

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

// Relative RMS error of two query heads' attention over layer 0 of `cache` (values fp32) against
// the same attention over the fp32 `keys`. When the cache stores keys divided by a per-channel
// scale, the query is multiplied by it, as the model does.
inline float cached_key_attention_error(const KvCache& cache, const std::vector<float>& keys,
                                        const std::vector<float>& values, const std::vector<float>& q,
                                        int32_t n, int32_t head_dim) {
  using io::TensorType;
  std::vector<float> scores(2 * static_cast<size_t>(n)), want(2 * head_dim), got(2 * head_dim), qs(q);
  if (const float* s = cache.key_scale(0))
    for (int32_t i = 0; i < 2 * head_dim; ++i) qs[i] *= s[i % head_dim];
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  const size_t row = head_dim * sizeof(float);
  const ops::KvRows v{TensorType::F32, values.data(), row};
  ops::attend_group_kv(q.data(), 2, {TensorType::F32, keys.data(), row}, v, n, head_dim, scale, 0.f, scores.data(),
                       want.data());
  ops::attend_group_kv(qs.data(), 2, {cache.types().k, cache.k(0, 0, 0), cache.k_head_bytes()}, v, n, head_dim, scale,
                       0.f, scores.data(), got.data());
  double e = 0, w = 0;
  for (int32_t i = 0; i < 2 * head_dim; ++i) e += (got[i] - want[i]) * (got[i] - want[i]), w += want[i] * want[i];
  return static_cast<float>(std::sqrt(e / w));
}

}  // namespace edgellm::model
