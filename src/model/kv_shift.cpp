#include "model/kv_shift.h"

#include <cstring>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::model {

void shift_kv_cache(const ModelConfig& c, KvCache& cache, int32_t first, int32_t n) {
  const int32_t size = cache.size();
  if (first < 0 || n < 0 || first > size - n)
    throw InvalidArgument("cannot drop positions [" + std::to_string(first) + ", " + std::to_string(first + n) +
                          ") from a KV cache of " + std::to_string(size));
  if (n == 0) return;
  const int32_t kvd = cache.kv_dim(), hd = cache.head_dim();
  const io::TensorType kt = cache.types().k;
  std::vector<float> key(static_cast<size_t>(kvd));
  std::vector<uint8_t> krow(cache.k_row_bytes()), vrow(cache.v_row_bytes());
  std::vector<float> cs(static_cast<size_t>(std::max(c.n_rot, 2)));
  for (int32_t il = 0; il < c.n_layer; ++il) {
    // The same frequencies as the forward pass, unscaled: a rotation by -n positions.
    ops::rope_cos_sin(c.n_rot, -static_cast<int64_t>(n), c.rope_base_for(il), c.rope_freq_scale, cs.data(),
                      c.rope_factors_for(cache.n_ctx()), 1.0f);
    const float* off = cache.key_offset(il);
    const float* sc = cache.key_scale(il);
    for (int32_t p = first + n; p < size; ++p) {
      // Rows move to a lower position only, so copying in increasing order never reads a row
      // already overwritten.
      cache.read_k(il, p, krow.data());
      if (kt == io::TensorType::F32) std::memcpy(key.data(), krow.data(), krow.size());
      else ops::dequantize_row(kt, krow.data(), key.data(), kvd);
      // The stored key lacks the offset (kv_cache.h): rotate the key itself, then store it as
      // write() would.
      if (sc)
        for (int32_t i = 0; i < kvd; ++i) key[static_cast<size_t>(i)] *= sc[i];
      if (off)
        for (int32_t i = 0; i < kvd; ++i) key[static_cast<size_t>(i)] += off[i];
      for (int32_t h = 0; h < kvd / hd; ++h) ops::rope_apply(&key[static_cast<size_t>(h) * hd], hd, c.n_rot, cs.data(), c.rope_neox);
      if (off)
        for (int32_t i = 0; i < kvd; ++i) key[static_cast<size_t>(i)] -= off[i];
      if (sc)
        for (int32_t i = 0; i < kvd; ++i) key[static_cast<size_t>(i)] /= sc[i];
      if (kt == io::TensorType::F32) std::memcpy(krow.data(), key.data(), krow.size());
      else ops::quantize_row(kt, key.data(), krow.data(), kvd);
      cache.store_k(il, p - n, krow.data());
      cache.read_v(il, p, vrow.data());
      cache.store_v(il, p - n, vrow.data());
    }
  }
  cache.set_size(size - n);
}

}  // namespace edgellm::model
