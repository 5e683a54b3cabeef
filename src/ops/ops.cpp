// Public entry points of ops.h except matmul: argument checks, then the active kernel table
// (element-wise) or the scalar reference code (row conversions, rope).
#include "ops/ops.h"

#include <cmath>
#include <string>

#include "ops/kernel_table.h"
#include "ops/quant_ref.h"
#include "util/error.h"

namespace edgellm::ops {

void check_row_length(TensorType t, int64_t n, const char* what) {
  if (!ref::supported(t))
    throw InvalidArgument(std::string(what) + ": tensor type " + std::string(io::type_name(t)) +
                          " is not supported by this build");
  const int64_t be = io::traits(t).block_elems;
  if (n < 0 || n % be != 0)
    throw InvalidArgument(std::string(what) + ": row length " + std::to_string(n) +
                          " is not a multiple of the " + std::string(io::type_name(t)) +
                          " block size " + std::to_string(be));
}

bool type_supported(TensorType t) { return ref::supported(t); }

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
  check_row_length(t, n, "dequantize_row");
  ref::dequantize(t, src, dst, n);
}

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
  check_row_length(t, n, "quantize_row");
  ref::quantize(t, src, dst, n);
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  if (n > 0) active_kernels().rmsnorm(x, w, out, n, eps);
}
void softmax(float* x, int64_t n) {
  if (n > 0) active_kernels().softmax(x, n);
}
float dot_f32(const float* a, const float* b, int64_t n) { return n > 0 ? active_kernels().dot(a, b, n) : 0.f; }
void axpy_f32(float a, const float* x, float* y, int64_t n) {
  if (n > 0) active_kernels().axpy(a, x, y, n);
}
void add_f32(const float* a, const float* b, float* out, int64_t n) {
  if (n > 0) active_kernels().add(a, b, out, n);
}
void scale_f32(float* x, float s, int64_t n) {
  if (n > 0) active_kernels().scale(x, s, n);
}
void silu_mul(const float* g, const float* u, float* out, int64_t n) {
  if (n > 0) active_kernels().silu_mul(g, u, out, n);
}
void gelu_mul(const float* g, const float* u, float* out, int64_t n) {
  if (n > 0) active_kernels().gelu_mul(g, u, out, n);
}

void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, bool neox) {
  if (n_rot > head_dim || n_rot % 2 != 0)
    throw InvalidArgument("rope: n_rot " + std::to_string(n_rot) + " must be even and <= head_dim " +
                          std::to_string(head_dim));
  // Per head this is O(head_dim) with a pow/sin/cos per pair; callers with many heads at
  // one position pay it per head, which is small next to the matmuls.
  const int64_t half = n_rot / 2;
  const float p = static_cast<float>(pos) * freq_scale;
  const float step = std::pow(freq_base, -2.f / static_cast<float>(n_rot));
  float inv_freq = 1.f;
  for (int64_t i = 0; i < half; ++i) {
    // theta in double: pos can be large and fp32 sin/cos of big angles lose digits.
    const double theta = static_cast<double>(p) * inv_freq;
    const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
    inv_freq *= step;
  }
}

}  // namespace edgellm::ops
