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
    : n_ctx_(n_ctx), kv_dim_(config.kv_dim()), head_dim_(config.head_dim), types_(types), n_head_kv_(config.n_head_kv) {
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
  k_head_ = io::row_bytes(types.k, head_dim_);
  v_head_ = io::row_bytes(types.v, head_dim_);
  for (int32_t il = 0; il < config.n_layer; ++il) {
    // for_overwrite: no zero fill, so untouched pages never become resident.
    k_.push_back(std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n_ctx) * k_row_));
    v_.push_back(std::make_unique_for_overwrite<uint8_t[]>(static_cast<size_t>(n_ctx) * v_row_));
  }
}

void KvCache::write(int32_t layer, int32_t pos, const float* key, const float* value) {
  // Converted head by head: with head_dim % block == 0 a row's blocks are the heads' blocks.
  auto put = [&](io::TensorType t, const float* x, bool keys) {
    for (int32_t h = 0; h < n_head_kv_; ++h) {
      uint8_t* dst = keys ? k(layer, h, pos) : v(layer, h, pos);
      const float* src = x + static_cast<size_t>(h) * head_dim_;
      if (t == io::TensorType::F32) std::memcpy(dst, src, static_cast<size_t>(head_dim_) * sizeof(float));
      else ops::quantize_row(t, src, dst, head_dim_);
    }
  };
  if (const float* off = types_.k == io::TensorType::F32 ? nullptr : key_offset(layer)) {
    // Per thread, not per cache: sequences of one batch may be written from several threads.
    thread_local std::vector<float> key_row;
    key_row.resize(static_cast<size_t>(kv_dim_));
    if (const float* s = key_scale(layer))
      for (int32_t i = 0; i < kv_dim_; ++i) key_row[static_cast<size_t>(i)] = (key[i] - off[i]) / s[i];
    else
      for (int32_t i = 0; i < kv_dim_; ++i) key_row[static_cast<size_t>(i)] = key[i] - off[i];
    put(types_.k, key_row.data(), true);
  } else {
    put(types_.k, key, true);
  }
  put(types_.v, value, false);
}

void KvCache::gather(const uint8_t* buf, size_t head_bytes, int32_t pos, uint8_t* row) const {
  for (int32_t h = 0; h < n_head_kv_; ++h)
    std::memcpy(row + h * head_bytes, buf + offset(h, pos, head_bytes), head_bytes);
}

void KvCache::scatter(uint8_t* buf, size_t head_bytes, int32_t pos, const uint8_t* row) const {
  for (int32_t h = 0; h < n_head_kv_; ++h)
    std::memcpy(buf + offset(h, pos, head_bytes), row + h * head_bytes, head_bytes);
}

void KvCache::copy_prefix(const KvCache& src, int32_t n) {
  if (src.n_layer() != n_layer() || src.kv_dim_ != kv_dim_ || src.head_dim_ != head_dim_ ||
      src.types_.k != types_.k || src.types_.v != types_.v || n < 0 || n > std::min(n_ctx_, src.n_ctx_))
    throw InvalidArgument("KV cache copy: caches of different shapes or types, or " + std::to_string(n) +
                          " positions out of range");
  for (int32_t il = 0; il < n_layer(); ++il)
    for (int32_t h = 0; h < n_head_kv_; ++h) {
      std::memcpy(k(il, h, 0), src.k(il, h, 0), static_cast<size_t>(n) * k_head_);
      std::memcpy(v(il, h, 0), src.v(il, h, 0), static_cast<size_t>(n) * v_head_);
    }
}

void KvCache::truncate(int32_t n) {
  if (n < 0 || n > size_)
    throw InvalidArgument("cannot truncate a KV cache of " + std::to_string(size_) + " positions to " +
                          std::to_string(n));
  size_ = n;
}

}  // namespace edgellm::model
