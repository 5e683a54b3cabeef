#pragma once
// An architecture is data: hyper-parameters read from GGUF metadata plus the choice of blocks.
// The forward pass (model.cpp) is written once over this description; adding a llama-like
// family means adding an ArchSpec entry in config.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace edgellm::model {

enum class MlpKind { SwiGLU, GeGLU };

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name, for display
  int32_t n_layer = 0;
  int32_t n_embd = 0;    // d_model
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;  // key/value length per head (may differ from n_embd / n_head)
  int32_t n_ff = 0;
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;
  float norm_eps = 1e-5f;

  // RoPE
  int32_t n_rot = 0;             // dims rotated per head
  float rope_base = 10000.0f;    // global layers
  float rope_base_local = 0.0f;  // sliding-window layers (0: same as rope_base)
  float rope_freq_scale = 1.0f;  // linear scaling: position * freq_scale
  bool rope_neox = false;        // pairs (i, i+n_rot/2) instead of (2i, 2i+1)
  // Per-pair frequency divisors [n_rot/2] (empty: none): Llama 3.1+ (the `rope_freqs` tensor, or
  // computed from rope.scaling.type = llama3 and its keys).
  // LongRoPE (Phi-3): rope_factors holds the short factors, these the long ones, used by sequences
  // whose context exceeds rope_ctx_orig (llama.cpp's rule: chosen by context size, not position).
  std::vector<float> rope_factors;
  std::vector<float> rope_factors_long;
  int32_t rope_ctx_orig = 0;
  float rope_attn_factor = 1.0f;  // multiplies RoPE's cos and sin (rope.scaling.attn_factor)

  // Blocks
  MlpKind mlp = MlpKind::SwiGLU;
  bool qkv_bias = false;        // Qwen2
  bool fused_qkv = false;       // one attn_qkv matrix: q rows, then k, then v (Phi-3)
  bool fused_gate_up = false;   // ffn_up of 2*n_ff rows: gate, then up (Phi-3)
  bool qk_norm = false;         // RMSNorm per head on q and k before RoPE (Gemma 3, Qwen3)
  bool post_attn_norm = false;  // norm on the attention output before the residual add
  bool post_ffn_norm = false;   // norm on the FFN output before the residual add
  float embd_scale = 1.0f;      // token embeddings multiplied by this (Gemma: sqrt(d_model); MiniCPM: scale_emb)
  float residual_scale = 1.0f;  // sub-layer outputs multiplied by this before the residual add (MiniCPM)
  float logit_scale = 1.0f;     // output logits divided by this (MiniCPM: hidden / dim_model_base)
  float attn_scale = 0.0f;      // q.k scale; 0 means 1/sqrt(head_dim)
  float attn_softcap = 0.0f;    // tanh soft-cap on attention logits (0: off)
  float final_softcap = 0.0f;   // tanh soft-cap on output logits (0: off)
  int32_t sliding_window = 0;   // tokens visible to sliding-window layers (0: none; Mistral: every layer)
  std::vector<bool> layer_swa;  // [n_layer] whether a layer uses the sliding window
  // [n_layer * kv_dim] subtracted from keys stored in q8_0/q4_0 caches (model/key_offset.h);
  // empty: none. Filled from the weights when the model loads, not from metadata.
  std::vector<float> key_offset;
  // [n_layer * kv_dim] divisors (>= 1) of those keys' outlier channels, by which attention
  // multiplies the query (model/key_offset.h); empty: none. Calibrated when the model loads.
  std::vector<float> key_scale;

  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }
  // The frequency divisors for a sequence whose context holds n_ctx positions (null: none).
  const float* rope_factors_for(int32_t n_ctx) const {
    if (!rope_factors_long.empty() && n_ctx > rope_ctx_orig) return rope_factors_long.data();
    return rope_factors.empty() ? nullptr : rope_factors.data();
  }
  float rope_base_for(int32_t layer) const {
    return layer_swa[layer] && rope_base_local > 0 ? rope_base_local : rope_base;
  }
};

// Reads and checks every hyper-parameter; throws ModelFormatError naming the missing or bad
// key, or the unsupported architecture (listing the supported ones).
ModelConfig config_from_gguf(const io::GgufFile& file);

std::vector<std::string> supported_architectures();

}  // namespace edgellm::model
