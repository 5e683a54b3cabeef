#pragma once
// Per-instruction-set kernel table. Each Highway target fills one (kernels.cpp); the
// public ops dispatch through active_kernels(), which force_isa() can switch.
#include <cstddef>
#include <cstdint>

#include "io/tensor_type.h"
#include "ops/quant_blocks.h"

namespace edgellm::ops {

// Activation encoding a weight type's dot kernel expects.
enum class ActKind { F32, Q8_A, Q8_KA };

// rows [r0, r1) of a weight matrix (row_stride bytes apart, n_in elements each) times the
// activations of n_tok tokens (act: token t starts at act + t * act_stride bytes, encoded as
// the type's ActKind); writes y[t * ldy + r].
using GemvFn = void (*)(const uint8_t* w, size_t row_stride, int64_t n_in, int64_t r0, int64_t r1,
                        const uint8_t* act, size_t act_stride, int64_t n_tok, float* y, int64_t ldy);

struct KernelTable {
  const char* isa;
  // Weight kernels indexed by KernelSlot.
  GemvFn gemv[11];
  // x[0..n) -> n/32 Q8_A blocks / n/256 Q8_KA blocks.
  void (*quantize_q8a)(const float* x, int64_t n, BlockQ8_A* out);
  void (*quantize_q8ka)(const float* x, int64_t n, BlockQ8_KA* out);
  void (*rmsnorm)(const float* x, const float* w, float* out, int64_t n, float eps);
  void (*softmax)(float* x, int64_t n);
  float (*max_checked)(const float* x, int64_t n, int64_t* first_bad);
  void (*exp_sums)(const float* x, int64_t n, double shift, double scale, float floor, double* sum_e, double* sum_ed);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  void (*scale)(float* x, float s, int64_t n);
  void (*silu_mul)(const float* g, const float* u, float* out, int64_t n);
  void (*gelu_mul)(const float* g, const float* u, float* out, int64_t n);
  // Attention of one head over cache rows of any KV type (ops.h attend_head_kv).
  void (*attend)(const float* q, io::TensorType k_type, const void* k, size_t k_stride, io::TensorType v_type,
                 const void* v, size_t v_stride, int64_t n, int64_t hd, float scale, float softcap, float* scores,
                 float* out);
  // Attention of nq query heads sharing one KV head (ops.h attend_group_kv).
  void (*attend_group)(const float* q, int64_t nq, io::TensorType k_type, const void* k, size_t k_stride,
                       io::TensorType v_type, const void* v, size_t v_stride, int64_t n, int64_t hd, float scale,
                       float softcap, float* scores, float* out);
  // attend_group for Q8_0 keys with the query quantized to q8_0 and VNNI scores
  // (kernels_attn_q8-inl.h); null where the target has no such kernel (all but AVX3).
  void (*attend_group_q8)(const float* q, int64_t nq, io::TensorType k_type, const void* k, size_t k_stride,
                          io::TensorType v_type, const void* v, size_t v_stride, int64_t n, int64_t hd, float scale,
                          float softcap, float* scores, float* out);
  // Weights in the X4 layout (ops/pack_x4.h), indexed by X4Slot; same contract as gemv, with
  // w the start of the packed matrix.
  GemvFn gemv_x4[5];
  // Weights in the K8 layout (ops/pack_k8.h): [0] Q4_K, [1] Q6_K; same contract.
  GemvFn gemv_k8[2];
  // Weights in the X16 layout (ops/pack_x16.h): [0] Q5_0, [1] Q8_0; same contract.
  GemvFn gemv_x16[2];
  // x16_native: the X16 VNNI kernel (AVX3; the CPU's VNNI is checked at the call).
  bool x16_native;
  // x4_native: dedicated X4 and K8 kernels (otherwise groups are unpacked to rows).
  bool x4_native;
  // Full attention of m query rows of one head over keys given transposed (ops/attention_rows.h;
  // kernels_attn_rows-inl.h).
  void (*attend_rows)(const float* q, size_t q_stride, const float* kt, size_t kt_stride, const float* v,
                      size_t v_stride, int64_t m, int64_t n_kv, int64_t hd, float scale, float* s, float* out,
                      size_t out_stride);
  // Rows times one packed panel of float columns (ops/gemm_f32.h).
  void (*gemm_rows)(const float* a, size_t a_stride, const float* b, size_t ldb, int64_t m, int64_t K, int64_t n,
                    float* y, size_t ldy);
  // Int8 tokens x a packed panel of 32 Q8_0 rows with VNNI (ops/gemm_q8.h); null where the
  // target has no such kernel (all but AVX3; the CPU's VNNI is checked at the call).
  void (*gemm_q8)(const uint8_t* act, size_t act_stride, const float* act_d, size_t d_stride, const uint8_t* panel,
                  int64_t nb, int64_t m, int64_t n, float* y, size_t ldy);
  // GELU (erf form) in place (ops/gelu_erf.h).
  void (*gelu_erf)(float* x, int64_t n);
};

enum KernelSlot { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K };
enum X4Slot { kX4SlotQ4_0, kX4SlotQ4_1, kX4SlotQ8_0, kX4SlotQ5_0, kX4SlotQ5_1 };

const KernelTable& active_kernels();

}  // namespace edgellm::ops
