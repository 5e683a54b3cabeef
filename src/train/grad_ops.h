#pragma once
// The backward halves of the forward pass's operations, on fp32 rows of one sequence
// ([T][n] row-major), with the pool's threads. The base weights stay quantized: W^T·dy
// dequantizes W a few rows at a time (ops::matrix_row + ops::dequantize_row), never whole.
#include <cstdint>
#include <vector>

#include "ops/ops.h"
#include "train/lora_params.h"

namespace edgellm::train {

// dx[t] += W^T dy[t] for t < T. dy: [T][W.n_out], dx: [T][W.n_in].
void matmul_t_add(const ops::MatrixView& W, const float* dy, int64_t T, float* dx, ops::ThreadPool& pool);

// y[t] += s·B·u[t] with u[t] = A·x[t] stored in `u` ([T][rank]). x: [T][n_in], y: [T][n_out].
void lora_forward(const LoraFactor& f, float s, const float* x, int64_t T, float* u, float* y, ops::ThreadPool& pool);
// Given dy = dL/dy: adds dL/dA and dL/dB (as bt) to f's gradients and A^T·du to dx (du = s·B^T·dy).
// x, u as lora_forward left them. `scratch` is grown as needed.
void lora_backward(LoraFactor& f, float s, const float* x, const float* u, const float* dy, int64_t T, float* dx,
                   ops::ThreadPool& pool, std::vector<float>& scratch);

// dx += d/dx of rmsnorm(x)·w for one row of n (w may be null: no scale).
void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, int64_t n, float eps);

// out = act(gate) * up (SwiGLU: silu, GeGLU: gelu_tanh) backward: dgate, dup from dout.
void glu_backward(bool gelu, const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                  int64_t n);

// Causal attention of one sequence, positions 0..T-1. q: [T][H][hd], k, v: [T][Hkv][hd].
struct AttentionShape {
  int64_t T = 0, n_head = 0, n_head_kv = 0, hd = 0;
  float scale = 1.0f, softcap = 0.0f;
  int32_t window = 0;  // > 0: key j visible to query i only when i - j < window
};
// out: [T][H][hd]; probs: [H][T][T] (the softmax rows, zero where masked) kept for backward.
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* out,
                       float* probs, ops::ThreadPool& pool);
// dq: [T][H][hd], dk, dv: [T][Hkv][hd], overwritten.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv, ops::ThreadPool& pool);

}  // namespace edgellm::train
