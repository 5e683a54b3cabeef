#pragma once
// The kernel interface. ops/ knows tensors and formats, never models: every function takes
// plain pointers and sizes. Implementations dispatch at run time to the best instruction set
// compiled in (Highway); EDGELLM_ISA=scalar|avx2|avx512|neon... forces one for tests.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/tensor_type.h"
#include "ops/thread_pool.h"

namespace edgellm::ops {

using io::TensorType;

// How a matrix's rows are laid out in memory.
enum class Layout : uint8_t {
  Rows,  // as GGUF stores them: row r at data + r * row_stride
  X4,    // Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 repacked four rows per group (ops/pack_x4.h); group g at data + 4 g row_stride
  K8,    // Q4_K/Q6_K repacked eight rows per group (ops/pack_k8.h); group g at data + g * k8::group_bytes
  X16,   // Q5_0/Q8_0 repacked sixteen rows per group for AVX-512 VNNI (ops/pack_x16.h); group g at data + 16 g row_stride
};

// A weight matrix as stored by GGUF: n_out rows of n_in elements each (ggml ne0 = n_in,
// ne1 = n_out), rows contiguous, row_stride bytes apart. n_in must be a multiple of the
// type's block size.
struct MatrixView {
  TensorType type = TensorType::F32;
  const void* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_stride = 0;
  Layout layout = Layout::Rows;
};

// Whether the active kernels read a matrix of type t faster after repack (true for Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0 (X4) and Q4_K, Q6_K (K8) on AVX2/AVX-512). EDGELLM_REPACK=0 in the environment
// turns repacking off, and so does exact mode (set_exact_activations) at the time of the call.
bool repack_preferred(TensorType t);
// Whether t has a repacked layout (X4, X16 or K8), and the bytes W takes in it.
bool repackable(TensorType t);
// The layout repack gives t: K8 (Q4_K/Q6_K), X16 (Q5_0/Q8_0 when the AVX-512 VNNI kernel runs:
// active ISA and use_vnni() at the call), else X4.
Layout repacked_layout(TensorType t);
size_t repacked_bytes(const MatrixView& W);
// W (row-major, contiguous rows) repacked into its layout (repacked_layout: X4, X16 or K8) at dst (repacked_bytes(W)
// bytes, written once front to back); returns the view of it. `consumed(src, n)` is called for
// consecutive ranges of W's bytes (about 1 MiB each) as soon as they are no longer read, so a
// caller can release the source's pages while the copy grows.
MatrixView repack(const MatrixView& W, uint8_t* dst, const std::function<void(const void*, size_t)>& consumed = {});
// repack into `storage` (resized).
MatrixView repack(const MatrixView& W, std::vector<uint8_t>& storage);
// W (row-major) repacked into the X4 layout in `storage` (resized); returns the view of it.
MatrixView repack_x4(const MatrixView& W, std::vector<uint8_t>& storage);
// Row r of W in GGUF layout: a pointer into W, or for X4/K8 the row unpacked into `scratch`.
const uint8_t* matrix_row(const MatrixView& W, int64_t r, std::vector<uint8_t>& scratch);

// Whether this build has dequantization and dot kernels for `t`.
bool type_supported(TensorType t);

// dst[0..n) = dequantized src row of n elements (n a multiple of the block size).
void dequantize_row(TensorType t, const void* src, float* dst, int64_t n);
// src row of n floats -> quantized `t` (used by `edgellm quantize` and tests).
void quantize_row(TensorType t, const float* src, void* dst, int64_t n);

// y[t*n_out + o] = sum_i W[o][i] * x[t*n_in + i]   for t < n_tokens.
// x: [n_tokens][n_in] fp32, y: [n_tokens][n_out] fp32. Work is split over the pool.
void matmul(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);
// Several matrices that share one input (Q/K/V, gate/up) in one pass over the pool, so the
// input is quantized once and threads synchronise once.
void matmul_multi(const MatrixView* Ws, float* const* ys, int n_mats, const float* x,
                  int64_t n_tokens, ThreadPool& pool);

// Exact mode: matmuls with quantized weights use fp32 activations (weights dequantized per
// row) instead of int8-quantized activations. Off by default (int8 is several times faster);
// EDGELLM_EXACT=1 turns it on at start-up. Used by the golden tests and `--exact`.
void set_exact_activations(bool exact);
// Whether the AVX-512 K8 kernel uses VNNI (vpdpbusd) on CPUs that have it: allowed by default,
// EDGELLM_VNNI=0 or set_vnni_allowed(false) turn it off (tests cover both paths on one machine).
void set_vnni_allowed(bool allowed);
bool use_vnni();  // allowed and supported by this CPU
bool exact_activations();

// ---- element-wise and row ops (fp32) ----
// out = x / rms(x) * w ; w may be null (no scale). In-place allowed.
void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps);
void softmax(float* x, int64_t n);
// Max of x[0..n) (n >= 1); *first_bad = index of the first NaN or +inf, or -1.
float max_checked(const float* x, int64_t n, int64_t* first_bad);
// Over the i with x[i] >= floor (pass a finite floor to skip -inf): adds sum of
// e_i = exp((x[i] - shift) * scale) to *sum_e and of e_i * (x[i] - shift) to *sum_ed (if not
// null). Vector exp in double lanes: for softmax normalisers and entropies over a vocabulary.
void exp_sums(const float* x, int64_t n, double shift, double scale, float floor, double* sum_e, double* sum_ed);
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a*x
void add_f32(const float* a, const float* b, float* out, int64_t n);
void scale_f32(float* x, float s, int64_t n);
// out[i] = silu(gate[i]) * up[i]
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
// out[i] = gelu_tanh(gate[i]) * up[i]
void gelu_mul(const float* gate, const float* up, float* out, int64_t n);
// Attention of one query head over n cached positions: s_j = scale * dot(q, k_j), soft-capped
// to softcap * tanh(s_j / softcap) when softcap > 0; out[0..hd) = sum_j softmax(s)_j * v_j.
// k_j = k + j * stride and v_j = v + j * stride (floats). scores: scratch of n floats (holds
// the probabilities afterwards). n >= 1.
void attend_head(const float* q, const float* k, const float* v, int64_t stride, int64_t n, int64_t hd,
                 float scale, float softcap, float* scores, float* out);
// One head's keys or values in a KV cache: row j (hd elements of `type`) at data + j * stride
// bytes. Types: F32, F16, Q8_0, Q4_0 (kv_type_supported); block types need hd % 32 == 0, so a
// block never spans two heads.
struct KvRows {
  TensorType type = TensorType::F32;
  const void* data = nullptr;
  size_t stride = 0;
};
bool kv_type_supported(TensorType t);
// attend_head over rows read as stored (no dequantized copy). Throws InvalidArgument for an
// unsupported type, a block type with hd % 32 != 0, or a stride under one row.
void attend_head_kv(const float* q, const KvRows& k, const KvRows& v, int64_t n, int64_t hd, float scale,
                    float softcap, float* scores, float* out);
// Grouped-query attention: the nq query heads that share one KV head, in one pass over its rows
// (each key and value row is read and widened once for all of them, not once per head).
// q and out: nq heads of hd floats, contiguous; scores: scratch of nq * n floats. Same results
// as attend_head_kv per head up to fp32 rounding. Throws InvalidArgument as attend_head_kv, and
// for nq < 1 or hd > 4096.
void attend_group_kv(const float* q, int64_t nq, const KvRows& k, const KvRows& v, int64_t n, int64_t hd,
                     float scale, float softcap, float* scores, float* out);

// Rotary embedding on one head vector of head_dim elements at position pos, rotating the
// first n_rot dims. neox=false pairs (2i, 2i+1); neox=true pairs (i, i+n_rot/2).
// freq_scale multiplies the position (linear scaling).
void rope(float* head, int64_t head_dim, int64_t n_rot, int64_t pos, float freq_base,
          float freq_scale, bool neox);
// rope() in two steps, so a position's angles are computed once for all heads and layers:
// cs[2i], cs[2i+1] = cos, sin of the angle of pair i < n_rot/2 (same values rope() uses), then
// rope_apply rotates a head with them. rope(...) == rope_cos_sin + rope_apply, bit for bit.
// Scaled RoPE (Llama 3.1 rope_freqs, LongRoPE): freq_factors[i] (n_rot/2 values, or null) divides
// pair i's frequency, and mscale multiplies every cos and sin (LongRoPE's attention factor).
void rope_cos_sin(int64_t n_rot, int64_t pos, float freq_base, float freq_scale, float* cs,
                  const float* freq_factors = nullptr, float mscale = 1.0f);
void rope_apply(float* head, int64_t head_dim, int64_t n_rot, const float* cs, bool neox);

// Name of the instruction set in use ("AVX2", "AVX3", "NEON", "scalar"...).
std::string active_isa();
// Instruction sets compiled into this binary and usable on this CPU.
std::vector<std::string> available_isas();
// Force one (tests); returns false if not available. Also read from EDGELLM_ISA at start-up.
bool force_isa(const std::string& name);

}  // namespace edgellm::ops
