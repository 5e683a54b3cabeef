// Phase-1 scalar implementations (temporary; replaced by the Highway kernels).
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/ops.h"
#include "ops/quant_ref.h"
#include "util/error.h"

namespace edgellm::ops {

namespace {
void check_row(TensorType t, int64_t n, const char* what) {
  if (!ref::supported(t))
    throw InvalidArgument(std::string(what) + ": unsupported tensor type " + std::string(io::type_name(t)));
  const int64_t be = io::traits(t).block_elems;
  if (n < 0 || n % be != 0)
    throw InvalidArgument(std::string(what) + ": row length " + std::to_string(n) +
                          " is not a multiple of the " + std::string(io::type_name(t)) +
                          " block size " + std::to_string(be));
}
}  // namespace

bool type_supported(TensorType t) { return ref::supported(t); }

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
  check_row(t, n, "dequantize_row");
  ref::dequantize(t, src, dst, n);
}

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
  check_row(t, n, "quantize_row");
  ref::quantize(t, src, dst, n);
}

void matmul(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  matmul_multi(&W, &y, 1, x, n_tokens, pool);
}

void matmul_multi(const MatrixView* Ws, float* const* ys, int n_mats, const float* x,
                  int64_t n_tokens, ThreadPool& pool) {
  for (int m = 0; m < n_mats; ++m) check_row(Ws[m].type, Ws[m].n_in, "matmul");
  for (int m = 0; m < n_mats; ++m) {
    const MatrixView& W = Ws[m];
    float* y = ys[m];
    pool.parallel_for(W.n_out, [&](int64_t b, int64_t e, int) {
      std::vector<float> row(W.n_in);
      for (int64_t o = b; o < e; ++o) {
        ref::dequantize(W.type, static_cast<const uint8_t*>(W.data) + o * W.row_stride, row.data(), W.n_in);
        for (int64_t t = 0; t < n_tokens; ++t) y[t * W.n_out + o] = dot_f32(row.data(), x + t * W.n_in, W.n_in);
      }
    });
  }
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const float s = 1.f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * s * (w ? w[i] : 1.f);
}
void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
  for (int64_t i = 0; i < n; ++i) x[i] /= sum;
}
float dot_f32(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void add_f32(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
void scale_f32(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}
void silu_mul(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}
void gelu_mul(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = g[i];
    out[i] = 0.5f * v * (1.f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v))) * u[i];
  }
}
void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, bool neox) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * freq_scale *
                        std::pow(freq_base, -2.f * static_cast<float>(i) / static_cast<float>(n_rot));
    const float c = std::cos(theta), s = std::sin(theta);
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
}

std::string active_isa() { return "scalar"; }
std::vector<std::string> available_isas() { return {"scalar"}; }
bool force_isa(const std::string& name) { return name == "scalar"; }

}  // namespace edgellm::ops
