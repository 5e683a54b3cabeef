#pragma once
// What a model takes in memory (weights, KV cache, forward-pass workspace), estimated from its
// GGUF file without loading it, and the choice of context size, KV type and slot count that fits
// a memory budget (--mem-budget). The chooser is a pure function so it can be tested on its own.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace edgellm::runtime {

// Resident weight bytes as model::load_weights lays them out with the active kernels.
struct WeightMemory {
  uint64_t file_bytes = 0;      // all tensor data in the file
  uint64_t mapped = 0;          // matrices read in place from the mapping (resident once read)
  uint64_t embedding = 0;       // token embedding rows read in place (only looked-up rows page in)
  uint64_t repacked_src = 0;    // file bytes of repacked matrices (pages released after the copy)
  uint64_t repacked = 0;        // their repacked copies (anonymous memory)
  int32_t n_repacked = 0;       // matrices repacked
  uint64_t vectors = 0;         // norms and biases converted to fp32
  std::vector<std::string> repacked_types;  // distinct tensor types repacked, e.g. "Q4_K"
  // Repacked tensors by name with the layer prefix dropped ("attn_q.weight" x 24, "token_embd.weight" x 1).
  std::vector<std::pair<std::string, int32_t>> repacked_names;
  // What stays resident: the embedding is left out (a generation touches few of its rows).
  uint64_t resident() const { return mapped + repacked + vectors; }
};
WeightMemory estimate_weights(const io::GgufFile& file, const model::ModelConfig& config);

// The tokenizer and the vocabulary metadata in memory, from the vocabulary's size: 224 bytes per
// token and 80 per BPE merge, fitted to the peak RSS of `edgellm tokenize` less the process's own
// (SmolLM2, 49K tokens + 49K merges: 14 MiB; Qwen2.5, 152K + 151K: 47 MiB; Gemma 3, 262K tokens
// and no merges: 59 MiB). 0 without a vocabulary.
uint64_t tokenizer_bytes(const io::GgufFile& file);

// model::Workspace bytes for passes of up to n_batch tokens, n_ctx positions, n_threads threads and
// up to n_logit_rows rows of logits (plus the caller's logits buffer of that many rows).
uint64_t workspace_bytes(const model::ModelConfig& config, int32_t n_batch, int32_t n_ctx,
                         int32_t n_threads, int32_t n_logit_rows);

struct MemBreakdown {
  WeightMemory weights;
  model::KvTypes kv_types;
  uint64_t kv_per_token = 0;  // model::kv_bytes_per_token
  int32_t n_ctx = 0, n_slots = 1;
  uint64_t kv = 0;            // kv_per_token * n_ctx * n_slots
  uint64_t workspace = 0;
  uint64_t tokenizer = 0;     // tokenizer_bytes
  // Leaves out the code and heap slack; counts the whole KV cache, though only the rows written
  // become resident.
  uint64_t total() const { return weights.resident() + kv + workspace + tokenizer; }
};

// A size: "1.5G", "800M", "512K", "2GiB", a plain byte count, or a fraction of physical RAM
// ("0.5": a number in (0, 1] without unit). InvalidArgument for anything else.
uint64_t parse_mem_size(const std::string& text, uint64_t physical_ram);
uint64_t physical_ram_bytes();
std::string format_bytes(uint64_t n);  // "1.23 GiB", "456.7 MiB", ...

// The chooser's input. kv_candidates lists KV types in order of preference with their bytes per
// token (the requested types alone when the user set -ctk/-ctv, else f32, f16, q8_0).
struct BudgetRequest {
  uint64_t budget = 0;
  uint64_t fixed = 0;  // weights + workspace: needed whatever the context
  int32_t n_ctx_max = 4096;  // the requested (or default) context per slot
  int32_t n_ctx_min = 512;   // never go below this (or below n_ctx_max when that is smaller)
  int32_t n_slots_max = 1;   // serve's --parallel; 1 for run/chat
  struct Kv {
    model::KvTypes types;
    uint64_t per_token = 0;
  };
  std::vector<Kv> kv_candidates;
};
struct BudgetChoice {
  int32_t n_ctx = 0, n_slots = 0;
  model::KvTypes kv_types;
  uint64_t kv_bytes = 0;
  uint64_t total = 0;  // fixed + kv_bytes
};
// Keeps the full context first: the first KV type where n_slots_max slots of n_ctx_max fit, then
// fewer slots (down to 1) with each type; when even one slot of n_ctx_max does not fit, the most
// compact type with the largest context that fits (a multiple of 256, at least n_ctx_min).
// Throws InvalidArgument naming the budget, the fixed size and the minimum needed when even
// n_ctx_min does not fit.
BudgetChoice choose_memory(const BudgetRequest& req);

}  // namespace edgellm::runtime
