// matmul_q8_tiled: activations to unsigned int8 (q + 128) with a scale per 32 elements, then
// tasks of (panel of 32 weight rows, block of tokens); each task packs its panel (the layout in
// kernels_q8gemm-inl.h) into a thread-local buffer and runs its tokens against it.
#include "ops/gemm_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/fp16.h"
#include "ops/kernel_table.h"
#include "ops/quant_blocks.h"

namespace edgellm::ops {
namespace {

constexpr int64_t kRows = 32;          // weight rows per panel
constexpr size_t kBlockBytes = 1280;   // panel bytes per 32-element block
constexpr int64_t kMinTokens = 16;

// Rows [o0, o0 + 32) of W (Q8_0) into the panel; rows past n_out are zero.
void pack_panel(const MatrixView& W, int64_t o0, uint8_t* panel, std::vector<uint8_t>& scratch) {
  const int64_t nb = W.n_in / 32;
  std::memset(panel, 0, static_cast<size_t>(nb) * kBlockBytes);
  for (int64_t l4 = 0; l4 < kRows && o0 + l4 < W.n_out; l4 += 4) {
    // One unpack per 4 rows for X4 (its rows then sit row_stride apart in scratch), as in Rows.
    const uint8_t* base = matrix_row(W, o0 + l4, scratch);
    for (int64_t j = 0; j < 4 && o0 + l4 + j < W.n_out; ++j) {
      const int64_t l = l4 + j, g = l / 16, li = l % 16;
      const uint8_t* row = base + j * W.row_stride;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * 34;
        uint8_t* p = panel + b * kBlockBytes;
        const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
        int32_t sum = 0;
        for (int k = 0; k < 32; ++k) {
          sum += qs[k];
          p[256 + (k / 4) * 128 + g * 64 + li * 4 + k % 4] = static_cast<uint8_t>(qs[k]);
        }
        const int32_t nws = -128 * sum;
        const float d = load_f16(blk);
        std::memcpy(p + 4 * l, &nws, 4);
        std::memcpy(p + 128 + 4 * l, &d, 4);
      }
    }
  }
}

}  // namespace

bool q8_tiled_available(const MatrixView& W, int64_t n_tokens) {
  return W.type == TensorType::Q8_0 && (W.layout == Layout::Rows || W.layout == Layout::X4) &&
         n_tokens >= kMinTokens && !exact_activations() && use_vnni() && active_kernels().gemm_q8 != nullptr;
}

void matmul_q8_tiled(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  if (!q8_tiled_available(W, n_tokens) || W.n_in % 32 != 0 || W.n_in == 0 || W.n_out == 0 || !W.data ||
      W.row_stride != io::row_bytes(W.type, W.n_in)) {
    matmul(W, x, n_tokens, y, pool);  // its checks and errors, or the general kernels
    return;
  }
  const KernelTable& K = active_kernels();
  const int64_t n_in = W.n_in, nb = n_in / 32;
  thread_local std::vector<uint8_t> act;
  thread_local std::vector<float> act_d;
  act.resize(static_cast<size_t>(n_tokens * n_in));
  act_d.resize(static_cast<size_t>(n_tokens * nb));
  uint8_t* ap = act.data();
  float* dp = act_d.data();
  // ops::matmul's int8 activations (the target's vector quantizer), stored unsigned.
  pool.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
    thread_local std::vector<BlockQ8_A> blocks;
    blocks.resize(static_cast<size_t>(nb));
    for (int64_t t = t0; t < t1; ++t) {
      K.quantize_q8a(x + t * n_in, n_in, blocks.data());
      for (int64_t b = 0; b < nb; ++b) {
        dp[t * nb + b] = blocks[b].d;
        uint8_t* dst = ap + t * n_in + b * 32;
        for (int k = 0; k < 32; ++k) dst[k] = static_cast<uint8_t>(blocks[b].qs[k]) ^ 0x80;
      }
    }
  });
  const int64_t n_panels = (W.n_out + kRows - 1) / kRows;
  const int64_t want = std::max<int64_t>(1, (4 * pool.size() + n_panels - 1) / n_panels);
  const int64_t n_blocks = std::max<int64_t>(1, std::min(want, n_tokens / 96));
  const int64_t block = (n_tokens + n_blocks - 1) / n_blocks;
  pool.run_chunks(n_panels * n_blocks, [&](int64_t task, int) {
    const int64_t p = task / n_blocks, t0 = (task % n_blocks) * block, t1 = std::min(n_tokens, t0 + block);
    if (t0 >= t1) return;
    const int64_t o0 = p * kRows, width = std::min(kRows, W.n_out - o0);
    thread_local std::vector<uint8_t> panel, scratch;
    panel.resize(static_cast<size_t>(nb) * kBlockBytes);
    pack_panel(W, o0, panel.data(), scratch);
    K.gemm_q8(ap + t0 * n_in, static_cast<size_t>(n_in), dp + t0 * nb, static_cast<size_t>(nb), panel.data(), nb,
              t1 - t0, width, y + t0 * W.n_out + o0, static_cast<size_t>(W.n_out));
  });
}

}  // namespace edgellm::ops
