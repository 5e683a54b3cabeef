#pragma once
// Per-sequence attention cache: for every layer, keys and values of each position.
// Memory is reserved up front but only touched as positions fill, so the resident size grows
// with the conversation, not with the context limit.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"

namespace edgellm::model {

class KvCache {
 public:
  KvCache(const ModelConfig& config, int32_t n_ctx);

  int32_t n_ctx() const { return n_ctx_; }
  int32_t kv_dim() const { return kv_dim_; }
  // Key / value row of one layer at one position: [kv_dim] = [n_head_kv][head_dim].
  float* k(int32_t layer, int32_t pos) { return k_[layer].get() + static_cast<size_t>(pos) * kv_dim_; }
  float* v(int32_t layer, int32_t pos) { return v_[layer].get() + static_cast<size_t>(pos) * kv_dim_; }
  const float* k(int32_t layer, int32_t pos) const { return k_[layer].get() + static_cast<size_t>(pos) * kv_dim_; }
  const float* v(int32_t layer, int32_t pos) const { return v_[layer].get() + static_cast<size_t>(pos) * kv_dim_; }

  // Number of positions holding valid entries (the sequence length so far).
  int32_t size() const { return size_; }
  void set_size(int32_t n) { size_ = n; }
  // Forgets every position from n on: a rejected speculative draft or a prompt suffix that
  // changed. Entries past n are simply overwritten by the next pass. Throws InvalidArgument
  // unless 0 <= n <= size().
  void truncate(int32_t n);
  void clear() { size_ = 0; }
  // Bytes if every position were filled.
  uint64_t capacity_bytes() const;

 private:
  int32_t n_ctx_;
  int32_t kv_dim_;
  int32_t size_ = 0;
  std::vector<std::unique_ptr<float[]>> k_, v_;  // [n_layer] of [n_ctx][kv_dim]
};

}  // namespace edgellm::model
