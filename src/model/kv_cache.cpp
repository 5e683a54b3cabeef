#include "model/kv_cache.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::model {
namespace {

constexpr io::TensorType kKvTypes[] = {io::TensorType::F32, io::TensorType::F16, io::TensorType::Q8_0,
                                       io::TensorType::Q4_0};

void check_type(io::TensorType t, int32_t head_dim, const char* what) {
  if (!ops::kv_type_supported(t))
    throw InvalidArgument(std::string("KV cache ") + what + " type " + kv_type_name(t) + " is not supported");
  const int64_t be = io::traits(t).block_elems;
  if (head_dim % be != 0)
    throw InvalidArgument(std::string("KV cache ") + what + " type " + kv_type_name(t) + " needs a head size that is a multiple of " +
                          std::to_string(be) + "; this model's is " + std::to_string(head_dim) + " (use f16 or f32)");
}

}  // namespace

std::string kv_type_name(io::TensorType t) {
  std::string s(io::type_name(t));
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

io::TensorType kv_type_from_name(std::string_view name, std::string_view what) {
  for (io::TensorType t : kKvTypes) {
    const std::string n = kv_type_name(t);
    if (name.size() == n.size() &&
        std::equal(name.begin(), name.end(), n.begin(), [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
      return t;
  }
  std::string valid;
  for (io::TensorType t : kKvTypes) valid += (valid.empty() ? "" : ", ") + kv_type_name(t);
  throw InvalidArgument(std::string(what) + ": unknown KV cache type '" + std::string(name) + "' (valid: " + valid + ")");
}

uint64_t kv_bytes_per_token(const ModelConfig& config, KvTypes types) {
  return static_cast<uint64_t>(config.n_layer) *
         (io::row_bytes(types.k, config.kv_dim()) + io::row_bytes(types.v, config.kv_dim()));
}

KvCache::KvCache(const ModelConfig& config, int32_t n_ctx, KvTypes types)
    : n_ctx_(n_ctx), kv_dim_(config.kv_dim()), head_dim_(config.head_dim), types_(types) {
  if (n_ctx <= 0) throw InvalidArgument("context size must be positive, got " + std::to_string(n_ctx));
  check_type(types.k, head_dim_, "key");
  check_type(types.v, head_dim_, "value");
  k_row_ = io::row_bytes(types.k, kv_dim_);
  // Float keys are stored as computed; an offset only helps a format with one scale per block.
  const size_t offset_size = static_cast<size_t>(config.n_layer) * kv_dim_;
  if (io::traits(types.k).block_elems > 1 && config.key_offset.size() == offset_size) {
    key_offset_ = config.key_offset;
    if (config.key_scale.size() == offset_size) key_scale_ = config.key_scale;
  }
  v_row_ = io::row_bytes(types.v, kv_dim_);
  for (int32_t il = 0; il < config.n_layer; ++il) {
    // for_overwrite: no zero fill, so untouched pages never become resident.
    k_.push_back(std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n_ctx) * k_row_));
    v_.push_back(std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n_ctx) * v_row_));
  }
}

void KvCache::write(int32_t layer, int32_t pos, const float* key, const float* value) {
  // Whole rows at once: with head_dim % block == 0 a row's blocks are the heads' blocks.
  if (types_.k == io::TensorType::F32) std::memcpy(k(layer, pos), key, k_row_);
  else if (const float* off = key_offset(layer)) {
    // Per thread, not per cache: sequences of one batch may be written from several threads.
    thread_local std::vector<float> key_row;
    key_row.resize(static_cast<size_t>(kv_dim_));
    if (const float* s = key_scale(layer))
      for (int32_t i = 0; i < kv_dim_; ++i) key_row[static_cast<size_t>(i)] = (key[i] - off[i]) / s[i];
    else
      for (int32_t i = 0; i < kv_dim_; ++i) key_row[static_cast<size_t>(i)] = key[i] - off[i];
    ops::quantize_row(types_.k, key_row.data(), k(layer, pos), kv_dim_);
  } else {
    ops::quantize_row(types_.k, key, k(layer, pos), kv_dim_);
  }
  if (types_.v == io::TensorType::F32) std::memcpy(v(layer, pos), value, v_row_);
  else ops::quantize_row(types_.v, value, v(layer, pos), kv_dim_);
}

void KvCache::truncate(int32_t n) {
  if (n < 0 || n > size_)
    throw InvalidArgument("cannot truncate a KV cache of " + std::to_string(size_) + " positions to " +
                          std::to_string(n));
  size_ = n;
}

}  // namespace edgellm::model
