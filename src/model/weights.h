#pragma once
// Views of a model's weights. Matrices stay in the mmap'ed file (zero copy) unless the active
// kernels read a repacked layout faster (X4: Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, K8: Q4_K/Q6_K on AVX2/AVX-512:
// ops::repack); small
// vectors (norms, biases) are converted to fp32 once at load.
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/page_arena.h"
#include "ops/ops.h"

namespace edgellm::model {

struct LayerWeights {
  std::vector<float> attn_norm;       // [n_embd]
  ops::MatrixView wq, wk, wv, wo;     // [q_dim x n_embd], [kv_dim x n_embd] x2, [n_embd x q_dim]
  std::vector<float> bq, bk, bv;      // [q_dim], [kv_dim] x2 (qkv_bias only)
  std::vector<float> q_norm, k_norm;  // [head_dim] (qk_norm only)
  std::vector<float> post_attn_norm;  // [n_embd] (post_attn_norm only)
  std::vector<float> ffn_norm;        // [n_embd]
  ops::MatrixView w_gate, w_up;       // [n_ff x n_embd]
  ops::MatrixView w_down;             // [n_embd x n_ff]
  std::vector<float> post_ffn_norm;   // [n_embd] (post_ffn_norm only)
};

struct Weights {
  ops::MatrixView token_embd;  // [n_vocab x n_embd]
  std::vector<LayerWeights> layers;
  std::vector<float> output_norm;  // [n_embd]
  ops::MatrixView output;          // [n_vocab x n_embd]; the embedding when tied
  bool tied_output = false;
  uint64_t matrix_bytes = 0;  // bytes of all matrices read per decoded token (roofline)
  // Storage of repacked matrices (the views above point into it); move-only. Pages are committed
  // only as the repacking writes them, in huge pages where the system allows (page_arena.h).
  PageArena repacked;
};

// Checks every tensor's presence, shape and type; throws ModelFormatError naming it.
Weights load_weights(const io::GgufFile& file, const ModelConfig& config);

// The file's tensor `name` of shape [n_out x n_in] as a matrix view (no copy). ModelFormatError
// when it is missing, has another shape, or a type this build cannot compute with.
ops::MatrixView tensor_matrix(const io::GgufFile& file, const std::string& name, int64_t n_in, int64_t n_out);
// The file's F32/F16/BF16 vector `name` of n elements, in floats. ModelFormatError otherwise.
std::vector<float> tensor_vector(const io::GgufFile& file, const std::string& name, int64_t n);

}  // namespace edgellm::model
