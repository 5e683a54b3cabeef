// attention_rows: keys transposed once per head (so the score kernel loads consecutive keys as a
// vector), then (head, block of query rows) tasks over the pool, each with its own score block.
#include "ops/attention_rows.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/kernel_table.h"
#include "util/error.h"

namespace edgellm::ops {

void attention_rows(const float* q, size_t q_stride, const float* k, size_t k_stride, const float* v,
                    size_t v_stride, int64_t n_q, int64_t n_kv, int64_t n_heads, int64_t hd, float scale, float* out,
                    size_t out_stride, ThreadPool& pool) {
  if (n_q < 1 || n_kv < 1 || n_heads < 1 || hd < 1)
    throw InvalidArgument("attention_rows: sizes must be positive (n_q " + std::to_string(n_q) + ", n_kv " +
                          std::to_string(n_kv) + ", heads " + std::to_string(n_heads) + ", hd " +
                          std::to_string(hd) + ")");
  const size_t width = static_cast<size_t>(n_heads * hd);
  if (q_stride < width || k_stride < width || v_stride < width || out_stride < width)
    throw InvalidArgument("attention_rows: a row stride is shorter than heads x head size (" +
                          std::to_string(width) + " floats)");
  if (!q || !k || !v || !out) throw InvalidArgument("attention_rows: null buffer");
  if (!(scale > 0) || !std::isfinite(scale)) throw InvalidArgument("attention_rows: scale must be positive and finite");
  const KernelTable& K = active_kernels();
  // kt[h][e][j]: element e of head h's key j; rows padded with zeros to whole 16-float
  // vectors (the score kernel reads them; their scores are dropped).
  const int64_t ld = (n_kv + 15) / 16 * 16;
  thread_local std::vector<float> kt;
  kt.assign(width * static_cast<size_t>(ld), 0.0f);
  float* ktp = kt.data();
  pool.parallel_for(n_heads, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      float* dst = ktp + static_cast<size_t>(h * hd) * ld;
      for (int64_t j = 0; j < n_kv; ++j) {
        const float* src = k + j * k_stride + h * hd;
        for (int64_t e = 0; e < hd; ++e) dst[e * ld + j] = src[e];
      }
    }
  });
  // Query rows per task: a score block of about 256 KiB (stays in L2 between S and P V), a
  // multiple of 12 (whole register tiles of 6, 4 or 3 rows).
  const int64_t block = std::min(n_q, std::max<int64_t>(12, (65536 / ld) / 12 * 12));
  const int64_t per_head = (n_q + block - 1) / block;
  pool.run_chunks(n_heads * per_head, [&](int64_t task, int) {
    const int64_t h = task / per_head, i0 = (task % per_head) * block, m = std::min(block, n_q - i0);
    thread_local std::vector<float> s;
    s.resize(static_cast<size_t>(block * ld));
    K.attend_rows(q + i0 * q_stride + h * hd, q_stride, ktp + static_cast<size_t>(h * hd) * ld,
                  static_cast<size_t>(ld), v + h * hd, v_stride, m, n_kv, hd, scale, s.data(),
                  out + i0 * out_stride + h * hd, out_stride);
  });
}

}  // namespace edgellm::ops
