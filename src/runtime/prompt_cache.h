#pragma once
// On-disk prompt cache (`serve --prompt-cache DIR`): KV states of long prompts saved as files
// (session_file.h) so a long system prompt is computed once, across server restarts. An entry
// is keyed by its exact tokens (and LoRA set); a new prompt uses the entry sharing its longest
// prefix, truncated to that prefix. Entries for other models or cache types in the same folder
// are ignored. Not thread-safe: the scheduler thread owns it.
#include <cstdint>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/engine.h"

namespace edgellm::runtime {

struct PromptCacheOptions {
  std::string dir;
  int32_t min_tokens = 256;  // shorter prompts are cheap to recompute and not stored
  size_t max_entries = 32;   // least recently used entries are deleted beyond this
};

class DiskPromptCache {
 public:
  // Creates `dir` if needed and indexes the entries already in it (Error if it cannot).
  DiskPromptCache(const Engine& engine, model::KvTypes types, PromptCacheOptions opts);

  // Loads into cache/tokens the stored prefix of `prompt` that is longer than `have` tokens
  // (what the caller already holds), at most `limit` tokens. Returns the tokens now held, or 0
  // if no entry beats `have` (cache untouched) or loading failed (the entry is dropped; cache
  // and tokens are then empty).
  size_t load_prefix(const std::vector<int32_t>& prompt, const std::string& adapters, size_t have, size_t limit,
                     model::KvCache& cache, std::vector<int32_t>& tokens);
  // Saves cache/tokens (all of them) unless they are shorter than min_tokens or an entry already
  // holds them as a prefix. Errors are swallowed: a full disk must not fail a request.
  void store(const model::KvCache& cache, const std::vector<int32_t>& tokens, const std::string& adapters);

  size_t size() const { return entries_.size(); }
  uint64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::string path;
    std::vector<int32_t> tokens;
    std::string adapters;
    uint64_t last_used = 0;
  };
  void evict();

  const Engine& engine_;
  model::KvTypes types_;
  PromptCacheOptions opts_;
  std::vector<Entry> entries_;
  uint64_t clock_ = 0, hits_ = 0;
};

}  // namespace edgellm::runtime
