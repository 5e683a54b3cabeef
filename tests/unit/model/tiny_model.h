#pragma once
// Builds small random-weight GGUF models in memory for model-layer tests.
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace edgellm::testing {

struct TinySpec {
  std::string arch = "llama";
  int n_layer = 2, n_embd = 32, n_head = 4, n_head_kv = 2, head_dim = 8, n_ff = 48, n_vocab = 40;
  int sliding_window = 4;
  bool tied = true;
  bool fused = false;  // Phi-3's layout: one attn_qkv matrix, ffn_up of 2 * n_ff rows (gate first), no ffn_gate
  uint32_t seed = 1;
};

// Holds the serialized bytes for as long as the GgufFile that views them.
struct TinyFile {
  std::vector<uint8_t> bytes;
  std::unique_ptr<io::GgufFile> file;
};

inline std::vector<float> random_vec(std::mt19937& rng, size_t n, float scale, float offset = 0.0f) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * dist(rng);
  return v;
}

inline void add_f32(io::GgufWriter& w, const std::string& name, const std::vector<int64_t>& ne,
                    const std::vector<float>& data) {
  std::vector<uint8_t> bytes(data.size() * 4);
  std::memcpy(bytes.data(), data.data(), bytes.size());
  w.add_tensor(name, io::TensorType::F32, ne, std::move(bytes));
}

// `mutate` may edit the writer before serialization (to make broken files).
template <typename Mutate>
TinyFile make_tiny(const TinySpec& s, Mutate&& mutate) {
  io::GgufWriter w;
  const std::string a = s.arch;
  w.set_string("general.architecture", a);
  w.set_u32(a + ".block_count", s.n_layer);
  w.set_u32(a + ".embedding_length", s.n_embd);
  w.set_u32(a + ".feed_forward_length", s.n_ff);
  w.set_u32(a + ".context_length", 256);
  w.set_u32(a + ".attention.head_count", s.n_head);
  w.set_u32(a + ".attention.head_count_kv", s.n_head_kv);
  w.set_u32(a + ".attention.key_length", s.head_dim);
  w.set_u32(a + ".attention.value_length", s.head_dim);
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32(a + ".rope.freq_base", 1000000.0f);
  w.set_u32(a + ".vocab_size", s.n_vocab);
  if (a == "gemma3") w.set_u32(a + ".attention.sliding_window", s.sliding_window);
  std::mt19937 rng(s.seed);
  const int64_t d = s.n_embd, qd = s.n_head * s.head_dim, kvd = s.n_head_kv * s.head_dim;
  add_f32(w, "token_embd.weight", {d, s.n_vocab}, random_vec(rng, d * s.n_vocab, 0.5f));
  add_f32(w, "output_norm.weight", {d}, random_vec(rng, d, 0.1f, 1.0f));
  if (!s.tied) add_f32(w, "output.weight", {d, s.n_vocab}, random_vec(rng, d * s.n_vocab, 0.3f));
  for (int il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add_f32(w, p + "attn_norm.weight", {d}, random_vec(rng, d, 0.1f, 1.0f));
    if (s.fused) {
      add_f32(w, p + "attn_qkv.weight", {d, qd + 2 * kvd}, random_vec(rng, d * (qd + 2 * kvd), 0.3f));
    } else {
      add_f32(w, p + "attn_q.weight", {d, qd}, random_vec(rng, d * qd, 0.3f));
      add_f32(w, p + "attn_k.weight", {d, kvd}, random_vec(rng, d * kvd, 0.3f));
      add_f32(w, p + "attn_v.weight", {d, kvd}, random_vec(rng, d * kvd, 0.3f));
    }
    add_f32(w, p + "attn_output.weight", {qd, d}, random_vec(rng, qd * d, 0.3f));
    if (a == "qwen2") {
      add_f32(w, p + "attn_q.bias", {qd}, random_vec(rng, qd, 0.2f));
      add_f32(w, p + "attn_k.bias", {kvd}, random_vec(rng, kvd, 0.2f));
      add_f32(w, p + "attn_v.bias", {kvd}, random_vec(rng, kvd, 0.2f));
    }
    if (a == "gemma3") {
      add_f32(w, p + "attn_q_norm.weight", {s.head_dim}, random_vec(rng, s.head_dim, 0.1f, 1.0f));
      add_f32(w, p + "attn_k_norm.weight", {s.head_dim}, random_vec(rng, s.head_dim, 0.1f, 1.0f));
    }
    if (a == "gemma3" || a == "gemma2") {
      add_f32(w, p + "post_attention_norm.weight", {d}, random_vec(rng, d, 0.1f, 1.0f));
      add_f32(w, p + "post_ffw_norm.weight", {d}, random_vec(rng, d, 0.1f, 1.0f));
    }
    add_f32(w, p + "ffn_norm.weight", {d}, random_vec(rng, d, 0.1f, 1.0f));
    if (s.fused) {
      add_f32(w, p + "ffn_up.weight", {d, 2 * s.n_ff}, random_vec(rng, d * 2 * s.n_ff, 0.3f));
    } else {
      add_f32(w, p + "ffn_gate.weight", {d, s.n_ff}, random_vec(rng, d * s.n_ff, 0.3f));
      add_f32(w, p + "ffn_up.weight", {d, s.n_ff}, random_vec(rng, d * s.n_ff, 0.3f));
    }
    add_f32(w, p + "ffn_down.weight", {s.n_ff, d}, random_vec(rng, s.n_ff * d, 0.3f));
  }
  mutate(w);
  TinyFile t;
  t.bytes = w.to_bytes();
  t.file = io::GgufFile::from_memory(t.bytes.data(), t.bytes.size(), "tiny.gguf");
  return t;
}

inline TinyFile make_tiny(const TinySpec& s) {
  return make_tiny(s, [](io::GgufWriter&) {});
}

}  // namespace edgellm::testing
