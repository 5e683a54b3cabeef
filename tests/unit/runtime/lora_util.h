#pragma once
// LoRA adapters for the runtime tests, built in memory for a loaded engine's model.
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "model/lora.h"
#include "runtime/engine.h"

namespace edgellm::runtime::testing {

// A rank-4 adapter on attn_q and ffn_down of the first n_layers layers of the engine's model, F32, in memory.
inline std::shared_ptr<const model::LoraAdapter> make_lora(const Engine& e, uint32_t seed, std::vector<uint8_t>& bytes,
                                                            float stddev = 0.05f, int n_layers = 1) {
  const auto& c = e.config();
  io::GgufWriter w;
  w.set_string("general.architecture", c.arch);
  w.set_string("general.type", "adapter");
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", 8.0f);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  auto add = [&](const std::string& name, int64_t n0, int64_t n1) {
    std::vector<float> v(static_cast<size_t>(n0 * n1));
    for (float& x : v) x = dist(rng);
    std::vector<uint8_t> b(v.size() * sizeof(float));
    std::memcpy(b.data(), v.data(), b.size());
    w.add_tensor(name, io::TensorType::F32, {n0, n1}, std::move(b));
  };
  for (int il = 0; il < n_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add(p + "attn_q.weight.lora_a", c.n_embd, 4);
    add(p + "attn_q.weight.lora_b", 4, c.q_dim());
    add(p + "ffn_down.weight.lora_a", c.n_ff, 4);
    add(p + "ffn_down.weight.lora_b", 4, c.n_embd);
  }
  bytes = w.to_bytes();
  auto f = io::GgufFile::from_memory(bytes.data(), bytes.size(), "session-lora.gguf");
  return model::LoraAdapter::from_file(*f, e.model());
}

}  // namespace edgellm::runtime::testing
