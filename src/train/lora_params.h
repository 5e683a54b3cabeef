#pragma once
// Trainable LoRA factors for a frozen base model, with their gradients and AdamW state.
// A is kept as the file's lora_a [rank][n_in]; B transposed, bt [rank][n_out] (the file's lora_b is
// [n_out][rank]), so every product is a dot or an axpy over a contiguous row. The update is
// y += scale·B·(A·x), scale = alpha/rank.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"

namespace edgellm::train {

struct LoraTrainConfig {
  int32_t rank = 8;
  float alpha = 16.0f;
  // Which projections get factors (model::LoraTarget order: q k v o gate up down).
  std::array<bool, model::kLoraTargets> targets{true, true, true, true, true, true, true};
  // Which layers get factors ([n_layer]; empty = every layer).
  std::vector<bool> layers;
  uint64_t seed = 1;
};

// "q,k,v,o,gate,up,down" (any subset, or "all") -> target mask. InvalidArgument for unknown names.
std::array<bool, model::kLoraTargets> parse_lora_targets(const std::string& list);
// "all" or comma-separated layer numbers and ranges ("12-23", "0,4,8-11") -> mask [n_layer].
// InvalidArgument for malformed items and layers outside 0..n_layer-1.
std::vector<bool> parse_lora_layers(const std::string& list, int32_t n_layer);

// One adapted projection: factors, gradients (sums over the tokens seen since zero_grad) and
// AdamW moments.
struct LoraFactor {
  int64_t n_in = 0, n_out = 0;
  int32_t rank = 0;
  std::vector<float> a, bt;    // [rank][n_in], [rank][n_out]
  std::vector<float> ga, gbt;  // same shapes
  std::vector<float> ma, va, mb, vb;
};

struct AdamW {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float clip_norm = 1.0f;  // global gradient-norm clip (0: off)
};

class LoraParams {
 public:
  // Fresh factors for `m`: A ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) seeded, B = 0 (the adapter starts
  // as the identity, as in the LoRA paper).
  LoraParams(const model::ModelConfig& m, const LoraTrainConfig& cfg);
  // Factors copied from a loaded adapter (every pair it has; alpha and rank from it).
  static LoraParams from_adapter(const model::ModelConfig& m, const model::LoraAdapter& adapter);

  const model::ModelConfig& config() const { return cfg_; }
  float alpha() const { return alpha_; }
  int32_t rank() const { return rank_; }
  float scale() const { return alpha_ / static_cast<float>(rank_); }
  // Null when (layer, target) is not adapted.
  LoraFactor* factor(int32_t layer, model::LoraTarget t) {
    LoraFactor& f = layers_[layer][static_cast<int>(t)];
    return f.rank > 0 ? &f : nullptr;
  }
  const LoraFactor* factor(int32_t layer, model::LoraTarget t) const {
    return const_cast<LoraParams*>(this)->factor(layer, t);
  }
  uint64_t n_params() const;

  void zero_grad();
  // Divides the gradients by `n` (tokens of the step), clips their global norm, applies one
  // AdamW step. Returns the gradient norm before clipping; when it is not finite nothing is updated.
  double adamw_step(const AdamW& opt, double n);
  int64_t step() const { return step_; }

  // The adapter in llama.cpp's GGUF layout (F32 factors), loadable by --lora.
  // `type`: F32, F16 or Q8_0 (a Q8_0 file keeps the tensors whose rows are not a whole number of
  // 32-element blocks, e.g. lora_b at rank 8, in F16, as the engine and llama.cpp read any mix).
  void save_adapter(const std::string& path, const std::string& name,
                    io::TensorType type = io::TensorType::F32) const;
  // Factors, AdamW moments, step and `extra` integer fields (training position) in one GGUF file.
  void save_checkpoint(const std::string& path, const std::vector<std::pair<std::string, int64_t>>& extra) const;
  // Restores a checkpoint written by save_checkpoint for the same model, rank and targets;
  // returns its extra fields. Error naming the file and the mismatch otherwise.
  std::vector<std::pair<std::string, int64_t>> load_checkpoint(const std::string& path);

 private:
  LoraParams() = default;
  void allocate(int32_t layer, model::LoraTarget t, int32_t rank);
  model::ModelConfig cfg_;
  int32_t rank_ = 0;
  float alpha_ = 0.0f;
  int64_t step_ = 0;
  std::vector<std::array<LoraFactor, model::kLoraTargets>> layers_;
};

// (n_in, n_out) of a projection of this model.
std::pair<int64_t, int64_t> target_shape(const model::ModelConfig& c, model::LoraTarget t);

}  // namespace edgellm::train
