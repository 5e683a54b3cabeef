#pragma once
// LoRA adapters in the GGUF layout llama.cpp reads and writes, applied beside the base weights
// (never merged into them): y = W·x + scale·B·(A·x). The base stays mapped and shared; an adapter
// is a few MB of fp32 factors, so many adapters can serve one model, chosen per sequence.
//
// File layout (llama.cpp's convert_lora_to_gguf / llama-adapter):
//   general.type = "adapter", adapter.type = "lora", general.architecture = the base's,
//   adapter.lora.alpha (float; 0 or absent: the scale is the user's scale alone);
//   for a base matrix "<name>" of ggml shape [n_in, n_out]: "<name>.lora_a" [n_in, rank] and
//   "<name>.lora_b" [rank, n_out], each F32, F16, BF16 or Q8_0.
// The scale of one pair is user_scale · alpha / rank (rank = its lora_b's ne[0]).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "ops/thread_pool.h"
#include "util/error.h"

namespace edgellm::model {

class Model;

// An adapter file that is malformed, or does not fit the base model.
class LoraFormatError : public ModelFormatError {
 public:
  using ModelFormatError::ModelFormatError;
};

// The projections an adapter may change, in forward order.
enum class LoraTarget : uint8_t { Q, K, V, O, Gate, Up, Down };
constexpr int kLoraTargets = 7;
// The base tensor's name within a layer: "attn_q", ..., "ffn_down".
const char* lora_target_name(LoraTarget t);

// One pair of low-rank factors, as fp32 copies (rank · (n_in + n_out) floats).
struct LoraPair {
  int32_t rank = 0;  // 0: this projection is not adapted
  int64_t n_in = 0, n_out = 0;
  std::vector<float> a;   // [rank][n_in]: lora_a's rows
  std::vector<float> bt;  // [rank][n_out]: lora_b transposed, so B·u is `rank` axpys over n_out
};

// What an adapter file says about itself, read and checked without a base model.
struct LoraInfo {
  std::string arch;  // general.architecture
  std::string name;  // general.name (may be empty)
  float alpha = 0.0f;
  int32_t n_pairs = 0;
  int32_t rank_min = 0, rank_max = 0;
  uint64_t n_params = 0;                // elements of all lora_a and lora_b tensors
  std::vector<std::string> targets;     // base tensor names, file order
  std::vector<std::string> ignored;     // "*_norm.weight" tensors, skipped as llama.cpp does
};

// Checks the metadata and that every tensor is one half of a lora_a/lora_b pair of agreeing rank,
// 2-D, of a supported type. Throws LoraFormatError naming the key or tensor at fault.
LoraInfo inspect_lora(const io::GgufFile& f);

class LoraAdapter {
 public:
  // Maps `path`, checks it (inspect_lora) and against `base`: same architecture, every target an
  // existing base matrix that edgellm adapts (attention q/k/v/output, FFN gate/up/down), shapes
  // matching it. Throws LoraFormatError / ModelFormatError; the file is closed afterwards.
  static std::shared_ptr<const LoraAdapter> load(const std::string& path, const Model& base);
  static std::shared_ptr<const LoraAdapter> from_file(const io::GgufFile& f, const Model& base);

  const std::string& path() const { return path_; }
  const LoraInfo& info() const { return info_; }
  // Null when (layer, target) is not adapted.
  const LoraPair* pair(int32_t layer, LoraTarget t) const {
    const LoraPair& p = layers_[layer][static_cast<int>(t)];
    return p.rank > 0 ? &p : nullptr;
  }
  // user_scale · alpha / rank, or user_scale when alpha is 0 (llama.cpp's rule).
  float scale(const LoraPair& p, float user_scale) const {
    return info_.alpha != 0.0f ? user_scale * info_.alpha / static_cast<float>(p.rank) : user_scale;
  }
  // Whether this adapter was built for a model of this configuration (layer count and widths).
  bool fits(const ModelConfig& c) const;
  size_t bytes() const;  // fp32 factors held

 private:
  LoraAdapter() = default;
  std::string path_;
  LoraInfo info_;
  std::string arch_;
  int32_t n_embd_ = 0, q_dim_ = 0, kv_dim_ = 0, n_ff_ = 0;
  std::vector<std::array<LoraPair, kLoraTargets>> layers_;
};

// The adapters one sequence runs with, each with its user scale; summed when several.
// A per-sequence (per-token in model::Batch) parameter, never model state.
struct LoraEntry {
  std::shared_ptr<const LoraAdapter> adapter;
  float scale = 1.0f;
  bool operator==(const LoraEntry& o) const { return adapter == o.adapter && scale == o.scale; }
};
struct LoraSet {
  std::vector<LoraEntry> entries;
  bool empty() const { return entries.empty(); }
  bool operator==(const LoraSet& o) const { return entries == o.entries; }
};

// y[t] += Σ_entries scale·B·(A·x[t]) for the n tokens whose set (sets[t], may be null) adapts
// (layer, target). x: [n][n_in], y: [n][n_out]. Each token's arithmetic is the same whatever the
// batch holds (batch invariance). `scratch` is grown as needed.
void apply_lora(const LoraSet* const* sets, int64_t n, int32_t layer, LoraTarget target, const float* x,
                int64_t n_in, float* y, int64_t n_out, ops::ThreadPool& pool, std::vector<float>& scratch);

}  // namespace edgellm::model
