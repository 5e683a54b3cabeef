// Public entry points of ops.h except matmul: argument checks, then the active kernel table
// (element-wise) or the scalar reference code (row conversions, rope).
#include "ops/ops.h"

#include <cmath>
#include <string>
#include <vector>

#include "ops/attention_kv.h"
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
float max_checked(const float* x, int64_t n, int64_t* first_bad) {
  if (n < 1) throw InvalidArgument("max_checked: need n >= 1");
  return active_kernels().max_checked(x, n, first_bad);
}
void exp_sums(const float* x, int64_t n, double shift, double scale, float floor, double* sum_e, double* sum_ed) {
  if (n > 0) active_kernels().exp_sums(x, n, shift, scale, floor, sum_e, sum_ed);
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

void attend_head(const float* q, const float* k, const float* v, int64_t stride, int64_t n, int64_t hd,
                 float scale, float softcap, float* scores, float* out) {
  if (n < 1 || hd < 0 || stride < hd)
    throw InvalidArgument("attend_head: need n >= 1 positions and stride >= head_dim");
  const size_t bytes = static_cast<size_t>(stride) * sizeof(float);
  active_kernels().attend(q, TensorType::F32, k, bytes, TensorType::F32, v, bytes, n, hd, scale, softcap, scores,
                          out);
}

bool kv_type_supported(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::Q8_0 || t == TensorType::Q4_0;
}

namespace {
void check_kv_rows(const char* fn, const KvRows& k, const KvRows& v, int64_t n, int64_t hd) {
  if (n < 1 || hd < 1) throw InvalidArgument(std::string(fn) + ": need n >= 1 positions and head_dim >= 1");
  for (const KvRows* r : {&k, &v}) {
    if (!kv_type_supported(r->type))
      throw InvalidArgument(std::string(fn) + ": KV type " + std::string(io::type_name(r->type)) + " is not supported");
    const int64_t be = io::traits(r->type).block_elems;
    if (hd % be != 0)
      throw InvalidArgument(std::string(fn) + ": head_dim " + std::to_string(hd) + " is not a multiple of the " +
                            std::string(io::type_name(r->type)) + " block size " + std::to_string(be));
    if (r->stride < io::row_bytes(r->type, hd))
      throw InvalidArgument(std::string(fn) + ": row stride is smaller than one row");
  }
}
}  // namespace

void attend_head_kv(const float* q, const KvRows& k, const KvRows& v, int64_t n, int64_t hd, float scale,
                    float softcap, float* scores, float* out) {
  check_kv_rows("attend_head_kv", k, v, n, hd);
  active_kernels().attend(q, k.type, k.data, k.stride, v.type, v.data, v.stride, n, hd, scale, softcap, scores, out);
}

bool attend_group_int8_query(TensorType k_type) {
  return k_type == TensorType::Q8_0 && active_kernels().attend_group_q8 != nullptr && use_vnni() &&
         !exact_activations();
}

bool attend_group_int8_weights(TensorType v_type) { return attend_group_int8_query(v_type); }

void attend_group_kv(const float* q, int64_t nq, const KvRows& k, const KvRows& v, int64_t n, int64_t hd,
                     float scale, float softcap, float* scores, float* out) {
  check_kv_rows("attend_group_kv", k, v, n, hd);
  if (nq < 1) throw InvalidArgument("attend_group_kv: need at least one query head");
  if (hd > 4096) throw InvalidArgument("attend_group_kv: head_dim " + std::to_string(hd) + " is over 4096");
  // The VNNI kernels gather block scales with 32-bit offsets of up to 15 rows.
  const size_t big = size_t{1} << 26;
  const bool int8 = (attend_group_int8_query(k.type) || attend_group_int8_weights(v.type)) && k.stride <= big &&
                    v.stride <= big;
  (int8 ? active_kernels().attend_group_q8 : active_kernels().attend_group)(q, nq, k.type, k.data, k.stride, v.type,
                                                                           v.data, v.stride, n, hd, scale, softcap,
                                                                           scores, out);
}

namespace {
void check_rope(int64_t head_dim, int64_t n_rot) {
  if (n_rot > head_dim || n_rot % 2 != 0 || n_rot < 0)
    throw InvalidArgument("rope: n_rot " + std::to_string(n_rot) + " must be even and <= head_dim " +
                          std::to_string(head_dim));
}
}  // namespace

void rope_cos_sin(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, float* cs,
                  const float* freq_factors, float mscale) {
  const int64_t half = n_rot / 2;
  const float p = static_cast<float>(pos) * freq_scale;
  const float step = std::pow(freq_base, -2.f / static_cast<float>(n_rot));
  float inv_freq = 1.f;
  for (int64_t i = 0; i < half; ++i) {
    // theta in double: pos can be large and fp32 sin/cos of big angles lose digits.
    double theta = static_cast<double>(p) * inv_freq;
    if (freq_factors) theta /= freq_factors[i];
    cs[2 * i] = static_cast<float>(std::cos(theta)) * mscale;
    cs[2 * i + 1] = static_cast<float>(std::sin(theta)) * mscale;
    inv_freq *= step;
  }
}

void rope_apply(float* head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox) {
  check_rope(head_dim, n_rot);
  // O(n_rot) multiply-adds per head: negligible once the angles are shared (the sin/cos per
  // pair, previously recomputed for every head of every layer, was the cost).
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * c - x1 * s;
    head[b] = x0 * s + x1 * c;
  }
}

void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base, float freq_scale,
          bool neox) {
  check_rope(head_dim, n_rot);
  float cs[512];
  float* buf = cs;
  std::vector<float> big;
  if (n_rot > 512) big.resize(static_cast<size_t>(n_rot)), buf = big.data();
  rope_cos_sin(n_rot, pos, freq_base, freq_scale, buf);
  rope_apply(head, head_dim, n_rot, buf, neox);
}

}  // namespace edgellm::ops
