#pragma once
// Per-sequence attention cache: for every layer, keys and values of each position.
// Memory is reserved up front but only touched as positions fill, so the resident size grows
// with the conversation, not with the context limit.
//
// Keys and values are stored each in its own type (KvTypes, `-ctk` / `-ctv`): F32, F16, Q8_0 or
// Q4_0. A position's row is [n_head_kv][head_dim] converted on write (write()); block types
// need head_dim % 32 == 0 so every 32-element block lies inside one head, and attention reads
// one head's rows as stored (ops::attend_group_kv). Each head's rows are stored apart (k()).
// Keys of a block type are stored minus the model's key offset (ModelConfig::key_offset,
// model/key_offset.h), which attention does not need to add back (softmax ignores it); code
// that needs the key itself (context shift) adds key_offset() back. They are also divided by
// the model's key scale (ModelConfig::key_scale) where it has one: attention multiplies the
// query by key_scale(), and the key itself is stored * key_scale() + key_offset().
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/tensor_type.h"
#include "model/config.h"

namespace edgellm::model {

struct KvTypes {
  io::TensorType k = io::TensorType::F32;
  io::TensorType v = io::TensorType::F32;
};

// "f32", "f16", "q8_0", "q4_0" (any case) -> the type; InvalidArgument naming the valid ones
// otherwise. `what` names the option in the message (e.g. "-ctk").
io::TensorType kv_type_from_name(std::string_view name, std::string_view what);
// The lower-case name used by -ctk / -ctv.
std::string kv_type_name(io::TensorType t);

// Bytes one position takes in a cache of these types over all layers (keys + values).
uint64_t kv_bytes_per_token(const ModelConfig& config, KvTypes types);

class KvCache {
 public:
  // Throws InvalidArgument for n_ctx <= 0, an unsupported type, or a block type the model's
  // head_dim does not divide into.
  KvCache(const ModelConfig& config, int32_t n_ctx, KvTypes types = {});

  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_layer() const { return static_cast<int32_t>(k_.size()); }
  int32_t kv_dim() const { return kv_dim_; }
  int32_t head_dim() const { return head_dim_; }
  const KvTypes& types() const { return types_; }
  // Bytes of one position's key / value row in one layer (all KV heads).
  size_t k_row_bytes() const { return k_row_; }
  size_t v_row_bytes() const { return v_row_; }
  // Bytes of one KV head's key / value at one position: the stride between a head's positions.
  size_t k_head_bytes() const { return k_head_; }
  size_t v_head_bytes() const { return v_head_; }
  // Stored key / value of KV head h of one layer at one position. Each layer's buffer is
  // head-major ([n_head_kv][n_ctx][head row]), so attention of one KV head (one thread) reads one
  // ascending stream; rows of both heads interleaved made each thread skip every other 136 bytes
  // (q8_0, head_dim 128), which the hardware prefetchers followed badly.
  uint8_t* k(int32_t layer, int32_t h, int32_t pos) { return k_[layer].get() + offset(h, pos, k_head_); }
  uint8_t* v(int32_t layer, int32_t h, int32_t pos) { return v_[layer].get() + offset(h, pos, v_head_); }
  const uint8_t* k(int32_t layer, int32_t h, int32_t pos) const { return k_[layer].get() + offset(h, pos, k_head_); }
  const uint8_t* v(int32_t layer, int32_t h, int32_t pos) const { return v_[layer].get() + offset(h, pos, v_head_); }
  // A whole position's stored key / value row (all KV heads, k_row_bytes() / v_row_bytes(), head
  // after head as write() converts it) copied out of or into the cache.
  void read_k(int32_t layer, int32_t pos, uint8_t* row) const { gather(k_[layer].get(), k_head_, pos, row); }
  void read_v(int32_t layer, int32_t pos, uint8_t* row) const { gather(v_[layer].get(), v_head_, pos, row); }
  void store_k(int32_t layer, int32_t pos, const uint8_t* row) { scatter(k_[layer].get(), k_head_, pos, row); }
  void store_v(int32_t layer, int32_t pos, const uint8_t* row) { scatter(v_[layer].get(), v_head_, pos, row); }
  // Copies positions [0, n) of every layer from another cache of the same shape and types.
  void copy_prefix(const KvCache& src, int32_t n);
  // Stores fp32 key and value rows ([kv_dim] each) at a position, converted to the cache's types
  // (block-type keys minus key_offset(layer)).
  void write(int32_t layer, int32_t pos, const float* key, const float* value);
  // What write() subtracts from a key of this layer ([kv_dim]), or null when nothing.
  const float* key_offset(int32_t layer) const {
    return key_offset_.empty() ? nullptr : &key_offset_[static_cast<size_t>(layer) * kv_dim_];
  }

  // What write() divides a key of this layer by after the offset ([kv_dim], >= 1), or null.
  const float* key_scale(int32_t layer) const {
    return key_scale_.empty() ? nullptr : &key_scale_[static_cast<size_t>(layer) * kv_dim_];
  }

  // Number of positions holding valid entries (the sequence length so far).
  int32_t size() const { return size_; }
  void set_size(int32_t n) { size_ = n; }
  // Forgets every position from n on: a rejected speculative draft or a prompt suffix that
  // changed. Entries past n are simply overwritten by the next pass. Throws InvalidArgument
  // unless 0 <= n <= size().
  void truncate(int32_t n);
  void clear() { size_ = 0; }
  // Bytes one position takes over all layers (keys + values).
  uint64_t bytes_per_token() const { return static_cast<uint64_t>(k_.size()) * (k_row_ + v_row_); }
  // Bytes if every position were filled.
  uint64_t capacity_bytes() const { return bytes_per_token() * static_cast<uint64_t>(n_ctx_); }

 private:
  size_t offset(int32_t h, int32_t pos, size_t head_bytes) const {
    return (static_cast<size_t>(h) * n_ctx_ + pos) * head_bytes;
  }
  void gather(const uint8_t* buf, size_t head_bytes, int32_t pos, uint8_t* row) const;
  void scatter(uint8_t* buf, size_t head_bytes, int32_t pos, const uint8_t* row) const;

  int32_t n_ctx_;
  int32_t kv_dim_;
  int32_t head_dim_;
  KvTypes types_;
  int32_t n_head_kv_;
  size_t k_row_, v_row_, k_head_, v_head_;
  int32_t size_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> k_, v_;  // [n_layer] of [n_head_kv][n_ctx][head row bytes]
  std::vector<float> key_offset_;  // [n_layer * kv_dim], empty unless the keys are blocks
  std::vector<float> key_scale_;   // [n_layer * kv_dim], empty unless the keys are blocks
};

}  // namespace edgellm::model
