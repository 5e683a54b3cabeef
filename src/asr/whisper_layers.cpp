// The blocks Whisper needs beyond ops/: LayerNorm with bias, GELU (erf form, as Whisper was
// trained), a linear layer with bias on ops::matmul.
#include <algorithm>
#include <cmath>

#include "asr/whisper.h"
#include "ops/gelu_erf.h"
#include "ops/gemm_f32.h"
#include "ops/gemm_q8.h"

namespace edgellm::asr {

void layer_norm(const float* x, const Norm& n, float* out, int64_t d) {
  double mean = 0;
  for (int64_t i = 0; i < d; ++i) mean += x[i];
  mean /= d;
  double var = 0;
  for (int64_t i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= d;
  const float inv = static_cast<float>(1.0 / std::sqrt(var + 1e-5));
  const float mu = static_cast<float>(mean);
  for (int64_t i = 0; i < d; ++i) out[i] = (x[i] - mu) * inv * n.gamma[i] + n.beta[i];
}

void gelu_inplace(float* x, int64_t n) { ops::gelu_erf(x, n); }

// Element-wise passes over many tokens (the encoder's 1500 frames) on the pool: on one thread
// the erf of GELU and the LayerNorms were a large share of an encoder pass.
namespace {
constexpr int64_t kSerialElems = 1 << 14;
}

void layer_norm_rows(const float* x, int64_t n_tokens, const Norm& norm, float* out, int64_t d,
                     ops::ThreadPool& pool) {
  auto rows = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) layer_norm(x + t * d, norm, out + t * d, d);
  };
  if (n_tokens * d < kSerialElems) rows(0, n_tokens, 0);
  else pool.parallel_for(n_tokens, rows);
}

void gelu_rows(float* x, int64_t n, ops::ThreadPool& pool) {
  if (n < kSerialElems) return gelu_inplace(x, n);
  pool.parallel_for((n + 4095) / 4096, [&](int64_t b, int64_t e, int) {
    gelu_inplace(x + b * 4096, std::min(n, e * 4096) - b * 4096);
  });
}

void linear_forward(const Linear& l, const float* x, int64_t n_tokens, float* y, ops::ThreadPool& pool) {
  // Float weights over many tokens (encoder, convolutions, cross-attention keys/values): the
  // tiled float kernel; Q8_0 over many tokens the VNNI tiles; the rest ops::matmul's kernels.
  const bool float_w = l.w.type == io::TensorType::F32 || l.w.type == io::TensorType::F16 ||
                       l.w.type == io::TensorType::BF16;
  if (float_w && l.w.layout == ops::Layout::Rows && n_tokens >= 16)
    ops::matmul_float_tiled(l.w, x, n_tokens, y, pool);
  else
    ops::matmul_q8_tiled(l.w, x, n_tokens, y, pool);  // Q8_0 on VNNI; else ops::matmul
  if (!l.bias) return;
  const int64_t n = l.w.n_out;
  auto rows = [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) ops::add_f32(y + t * n, l.bias, y + t * n, n);
  };
  if (n_tokens * n < kSerialElems) rows(0, n_tokens, 0);
  else pool.parallel_for(n_tokens, rows);
}

}  // namespace edgellm::asr
