#pragma once
// A loaded model: the mapped GGUF file, its architecture description and weight views.
// Read-only after load, so many sessions can share one Model; all mutable state lives in the
// caller's KvCache and Workspace.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/key_offset.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "model/weights.h"
#include "ops/thread_pool.h"

namespace edgellm::model {

// Tokens to run in one forward pass. Tokens may belong to different sequences (continuous
// batching): each names its cache and position. Within one sequence, positions must be
// consecutive and continue the cache (pos == cache->size() for the first new token).
// Each token also names the LoRA adapters it runs with (null: the base alone), so sequences
// with different adapters share one pass; the caller keeps the sets alive during forward().
struct Batch {
  std::vector<int32_t> tokens;    // [n]
  std::vector<int32_t> pos;       // [n]
  std::vector<KvCache*> cache;    // [n]
  std::vector<const LoraSet*> lora;  // [n]
  std::vector<int32_t> logit_rows;  // indices into tokens whose logits are wanted
  // Logits of token ids below this only (rounded down to a multiple of 8), the rest -inf; 0: all.
  // A draft model's guesses need not cover the whole vocabulary (the target judges each), and
  // the output head is a third of a small model's weights. A setting: clear() keeps it.
  int32_t head_rows = 0;

  void add(int32_t token, int32_t position, KvCache* kv, bool want_logits, const LoraSet* adapters = nullptr) {
    if (want_logits) logit_rows.push_back(static_cast<int32_t>(tokens.size()));
    tokens.push_back(token);
    pos.push_back(position);
    cache.push_back(kv);
    lora.push_back(adapters && !adapters->empty() ? adapters : nullptr);
  }
  size_t size() const { return tokens.size(); }
  void clear() { tokens.clear(); pos.clear(); cache.clear(); lora.clear(); logit_rows.clear(); }
};

// Scratch buffers reused across forward passes (grown on demand, never shrunk).
struct Workspace {
  std::vector<float> x, xn, q, k, v, attn, proj, gate, up, hidden;
  std::vector<float> scores;  // [n_threads][n_ctx]
  std::vector<float> rows;    // gathered final hidden rows for the output head
  std::vector<float> lora;    // [n_threads][max rank]: A·x of one token (apply_lora)
  std::vector<float> qs;       // [n_threads][group][hd]: queries times the key scale (key_offset.h)
  std::vector<float> rope_cs;  // [n][n_rot] rotary cos/sin per token for rope_cs_base
  float rope_cs_base = 0.f;    // the frequency base rope_cs holds (0: none yet in this pass)
};

class Model {
 public:
  // Maps and validates the file; throws ModelFormatError / Error with the reason.
  static std::unique_ptr<Model> load(const std::string& path);
  static std::unique_ptr<Model> from_file(std::unique_ptr<io::GgufFile> file);

  const ModelConfig& config() const { return config_; }
  // The configuration to build a KV cache of these types from. For q8_0 / q4_0 keys of a model
  // that takes a key offset: config() plus the calibrated offset and outlier scales
  // (model/key_offset.h), measured by a short pass on the first such request and kept. Float
  // caches get config() and never pay for that pass. Thread-safe.
  const ModelConfig& cache_config(KvTypes types) const;
  const io::GgufFile& file() const { return *file_; }
  const Weights& weights() const { return weights_; }

  // Runs the batch; writes logits [batch.logit_rows.size()][n_vocab] to `logits`
  // (and, if `hidden` is non-null, the final-norm hidden states [same rows][n_embd]).
  // Updates each cache's size. Throws InvalidArgument for bad tokens or positions.
  void forward(const Batch& batch, Workspace& ws, ops::ThreadPool& pool, float* logits,
               float* hidden = nullptr) const;

 private:
  Model() = default;
  void validate(const Batch& batch) const;
  void attention(const Batch& batch, int32_t layer, Workspace& ws, ops::ThreadPool& pool) const;
  // The key offset and scales of block-type caches from a short pass (model/key_offset.h).
  KeyCalibration calibrate_keys() const;
  // Whether any token of a (validated) batch runs with adapters.
  static bool has_lora(const Batch& batch);

  std::unique_ptr<io::GgufFile> file_;
  ModelConfig config_;
  Weights weights_;
  bool wants_key_offset_ = false;  // a model key_offsets() gives an offset to (Qwen2's key bias)
  mutable std::once_flag keys_once_;
  mutable ModelConfig keyed_config_;  // config_ plus the key calibration, once cache_config made it
};

}  // namespace edgellm::model
