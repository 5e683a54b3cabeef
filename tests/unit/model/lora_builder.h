#pragma once
// Builds LoRA adapter GGUF files in memory for the model-layer tests, recording the factors
// written so references are computed from them, never from what the loader decoded.
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "ops/ops.h"
#include "tiny_model.h"

namespace edgellm::testing {

struct AdapterTensor {
  std::string name;
  std::vector<int64_t> ne;
  io::TensorType type = io::TensorType::F32;
};

struct AdapterBytes {
  std::vector<uint8_t> bytes;
  // Values as stored (after F16/Q8_0 rounding), row-major in ggml order: ne[0] fastest.
  std::map<std::string, std::vector<float>> values;
  std::unique_ptr<io::GgufFile> open() const {
    return io::GgufFile::from_memory(bytes.data(), bytes.size(), "adapter.gguf");
  }
};

// Standard adapter metadata (architecture, general.type, adapter.type, alpha), then `meta` may edit it.
inline AdapterBytes make_adapter(const std::string& arch, float alpha, const std::vector<AdapterTensor>& tensors,
                                 uint32_t seed = 7, const std::function<void(io::GgufWriter&)>& meta = {}) {
  io::GgufWriter w;
  w.set_string("general.architecture", arch);
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", alpha);
  if (meta) meta(w);
  std::mt19937 rng(seed);
  AdapterBytes out;
  for (const AdapterTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    std::vector<float> v = random_vec(rng, static_cast<size_t>(n), 0.4f);
    std::vector<uint8_t> bytes(io::row_bytes(t.type, t.ne[0]) * static_cast<size_t>(n / t.ne[0]));
    ops::quantize_row(t.type, v.data(), bytes.data(), n);
    ops::dequantize_row(t.type, bytes.data(), v.data(), n);  // the values the file really holds
    out.values[t.name] = std::move(v);
    w.add_tensor(t.name, t.type, t.ne, std::move(bytes));
  }
  out.bytes = w.to_bytes();
  return out;
}

// The pair for base matrix `base` ([n_in, n_out] in ggml order) at rank r.
inline void add_pair(std::vector<AdapterTensor>& ts, const std::string& base, int64_t n_in, int64_t n_out, int64_t r,
                     io::TensorType ta = io::TensorType::F32, io::TensorType tb = io::TensorType::F32) {
  ts.push_back({base + ".lora_a", {n_in, r}, ta});
  ts.push_back({base + ".lora_b", {r, n_out}, tb});
}

// Every projection of every layer of a tiny model of spec s, at rank r.
inline std::vector<AdapterTensor> all_pairs(const TinySpec& s, int64_t r) {
  const int64_t d = s.n_embd, qd = s.n_head * s.head_dim, kvd = s.n_head_kv * s.head_dim;
  std::vector<AdapterTensor> ts;
  for (int il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add_pair(ts, p + "attn_q.weight", d, qd, r);
    add_pair(ts, p + "attn_k.weight", d, kvd, r);
    add_pair(ts, p + "attn_v.weight", d, kvd, r);
    add_pair(ts, p + "attn_output.weight", qd, d, r);
    add_pair(ts, p + "ffn_gate.weight", d, s.n_ff, r);
    add_pair(ts, p + "ffn_up.weight", d, s.n_ff, r);
    add_pair(ts, p + "ffn_down.weight", s.n_ff, d, r);
  }
  return ts;
}

}  // namespace edgellm::testing
