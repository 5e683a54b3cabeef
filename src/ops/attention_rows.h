#pragma once
// Full (unmasked) multi-head attention of many query rows at once: what an encoder runs (Whisper:
// 1500 frames attending to all 1500). Blocks of query rows per head, the block's scores kept in
// cache, as register-tiled products (kernels_attn_rows-inl.h); attend_head is the one-query form.
#include <cstddef>
#include <cstdint>

#include "ops/thread_pool.h"

namespace edgellm::ops {

// For every head h < n_heads and query row i < n_q:
//   out[i][h] = sum_j softmax_j(scale * dot(q[i][h], k[j][h])) * v[j][h]    (j < n_kv)
// where x[i][h] is the hd floats at x + i * x_stride + h * hd (strides in floats; q, k and v may
// be the parts of one fused QKV buffer). Work is split over the pool by head and query block.
// InvalidArgument for empty sizes, strides shorter than n_heads * hd, or a scale that is not
// positive and finite.
void attention_rows(const float* q, size_t q_stride, const float* k, size_t k_stride, const float* v,
                    size_t v_stride, int64_t n_q, int64_t n_kv, int64_t n_heads, int64_t hd, float scale, float* out,
                    size_t out_stride, ThreadPool& pool);

}  // namespace edgellm::ops
