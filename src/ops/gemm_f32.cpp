// matmul_float_tiled: tasks of (panel of 64 output columns, block of tokens); each task widens
// its panel [n_in][64] from the weight rows (dequantize_row, then a transpose) into a
// thread-local buffer and runs its tokens against it.
#include "ops/gemm_f32.h"

#include <algorithm>
#include <string>
#include <vector>

#include "ops/kernel_table.h"
#include "util/error.h"

namespace edgellm::ops {

void matmul_float_tiled(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  if (W.type != TensorType::F32 && W.type != TensorType::F16 && W.type != TensorType::BF16)
    throw InvalidArgument("matmul_float_tiled: weights must be F32, F16 or BF16, not " +
                          std::string(io::type_name(W.type)));
  if (W.layout != Layout::Rows) throw InvalidArgument("matmul_float_tiled: weights must be in the Rows layout");
  if (W.n_in < 1 || W.n_out < 1 || n_tokens < 1) {
    if (n_tokens > 0 && W.n_out > 0) std::fill(y, y + n_tokens * W.n_out, 0.f);
    return;
  }
  if (!W.data || !x || !y) throw InvalidArgument("matmul_float_tiled: null buffer");
  if (W.row_stride < io::row_bytes(W.type, W.n_in))
    throw InvalidArgument("matmul_float_tiled: row_stride is smaller than a row");
  const KernelTable& K = active_kernels();
  constexpr int64_t kPanel = 64;
  const int64_t n_panels = (W.n_out + kPanel - 1) / kPanel;
  // Token blocks: enough tasks for every thread to stay busy (>= 4 each), each block long
  // enough (>= 96 tokens) that widening its panel is a small part of the work.
  const int64_t want = std::max<int64_t>(1, (4 * pool.size() + n_panels - 1) / n_panels);
  const int64_t n_blocks = std::max<int64_t>(1, std::min(want, n_tokens / 96));
  const int64_t block = (n_tokens + n_blocks - 1) / n_blocks;
  const auto* base = static_cast<const uint8_t*>(W.data);
  pool.run_chunks(n_panels * n_blocks, [&](int64_t task, int) {
    const int64_t p = task / n_blocks, t0 = (task % n_blocks) * block, t1 = std::min(n_tokens, t0 + block);
    if (t0 >= t1) return;
    const int64_t o0 = p * kPanel, width = std::min(kPanel, W.n_out - o0);
    thread_local std::vector<float> panel, row;
    panel.resize(static_cast<size_t>(W.n_in * kPanel));
    row.resize(static_cast<size_t>(W.n_in));
    for (int64_t j = 0; j < width; ++j) {
      dequantize_row(W.type, base + (o0 + j) * W.row_stride, row.data(), W.n_in);
      for (int64_t i = 0; i < W.n_in; ++i) panel[i * kPanel + j] = row[i];
    }
    K.gemm_rows(x + t0 * W.n_in, static_cast<size_t>(W.n_in), panel.data(), kPanel, t1 - t0, W.n_in, width,
                y + t0 * W.n_out + o0, static_cast<size_t>(W.n_out));
  });
}

}  // namespace edgellm::ops
