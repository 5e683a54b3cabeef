#pragma once
// Q8_0 matmul for many tokens with AVX-512 VNNI (an encoder's 1500 frames): tokens quantized to
// int8 per 32 elements once per call, weight rows packed into panels of 32 rows per task, int8
// register tiles (kernels_q8gemm-inl.h). Elsewhere (other types, other ISAs, no VNNI, exact
// mode, few tokens) it is ops::matmul.
#include <cstdint>

#include "ops/ops.h"

namespace edgellm::ops {

// y[t * W.n_out + o] = sum_i W[o][i] * x[t * W.n_in + i], as ops::matmul (same checks; W in the
// Rows or X4 layout). Activations are int8 with one scale per 32 elements, as ops::matmul's.
void matmul_q8_tiled(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);
// Whether matmul_q8_tiled runs its own kernel for W and this many tokens (else ops::matmul).
bool q8_tiled_available(const MatrixView& W, int64_t n_tokens);

}  // namespace edgellm::ops
