#include "model/kv_cache.h"

#include "util/error.h"

namespace edgellm::model {

KvCache::KvCache(const ModelConfig& config, int32_t n_ctx) : n_ctx_(n_ctx), kv_dim_(config.kv_dim()) {
  if (n_ctx <= 0) throw InvalidArgument("context size must be positive, got " + std::to_string(n_ctx));
  const size_t n = static_cast<size_t>(n_ctx) * kv_dim_;
  for (int32_t il = 0; il < config.n_layer; ++il) {
    // for_overwrite: no zero fill, so untouched pages never become resident.
    k_.push_back(std::make_unique_for_overwrite<float[]>(n));
    v_.push_back(std::make_unique_for_overwrite<float[]>(n));
  }
}

void KvCache::truncate(int32_t n) {
  if (n < 0 || n > size_)
    throw InvalidArgument("cannot truncate a KV cache of " + std::to_string(size_) + " positions to " +
                          std::to_string(n));
  size_ = n;
}

uint64_t KvCache::capacity_bytes() const {
  return 2ull * k_.size() * static_cast<uint64_t>(n_ctx_) * kv_dim_ * sizeof(float);
}

}  // namespace edgellm::model
