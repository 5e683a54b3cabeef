#pragma once
// Float-weight matmul for many tokens (an encoder's 1500 frames, convolutions as im2col rows):
// columns of W are widened and transposed into panels once per block of tokens, and every
// token row runs against a panel in register tiles (kernels_attn_rows-inl.h GemmRows). The
// row-by-row float kernel of ops::matmul (4 tokens per weight row, a horizontal sum per dot)
// is the decode path; this one has no horizontal sums and reads each panel from L2.
#include <cstdint>

#include "ops/ops.h"

namespace edgellm::ops {

// y[t * W.n_out + o] = sum_i W[o][i] * x[t * W.n_in + i], as ops::matmul, for W of type F32,
// F16 or BF16 in the Rows layout (InvalidArgument otherwise). fp32 accumulation: results equal
// ops::matmul's up to rounding.
void matmul_float_tiled(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

}  // namespace edgellm::ops
