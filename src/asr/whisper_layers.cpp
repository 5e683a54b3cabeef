// The blocks Whisper needs beyond ops/: LayerNorm with bias, GELU (erf form, as Whisper was
// trained), a linear layer with bias on ops::matmul.
#include <cmath>

#include "asr/whisper.h"

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

void gelu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678f));
}

void linear_forward(const Linear& l, const float* x, int64_t n_tokens, float* y, ops::ThreadPool& pool) {
  ops::matmul(l.w, x, n_tokens, y, pool);
  if (!l.bias) return;
  const int64_t n = l.w.n_out;
  for (int64_t t = 0; t < n_tokens; ++t) ops::add_f32(y + t * n, l.bias, y + t * n, n);
}

}  // namespace edgellm::asr
