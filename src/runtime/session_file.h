#pragma once
// Saved KV state: a sequence's tokens and the cache rows they fill, in one file (the format is
// described in session_file.cpp). Session::save / restore use it for `--session`, and the
// scheduler for its on-disk prompt cache.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace edgellm::runtime {

// A saved state that cannot be used here: damaged, not a saved state, or made for another
// model, cache type, LoRA set or a longer context. Failing to open or write the file is a plain
// Error (the C API tells the two apart).
class SavedStateError : public Error {
 public:
  using Error::Error;
};

// Writes tokens + cache rows (the cache must hold exactly tokens.size() positions) and
// `app_data`; atomic (temp file + rename). Error on I/O failure, the old file left in place.
// `adapters` names the LoRA set the rows were computed under (lora_key; empty for the base).
void save_kv_state(const Engine& engine, const model::KvCache& cache, const std::vector<int32_t>& tokens,
                   const std::string& path, const std::string& app_data = {}, const std::string& adapters = {});
// Replaces cache and tokens with the file's. Error for another model, other cache types, more
// tokens than the cache's context leaves room for, other adapters, or a damaged file; cache and
// tokens are then empty.
void restore_kv_state(const Engine& engine, model::KvCache& cache, std::vector<int32_t>& tokens,
                      const std::string& path, std::string* app_data = nullptr, const std::string& adapters = {});
// The tokens of a saved state and the adapters key it was saved under, reading only the head of
// the file; same errors for another model or cache types (the rows are checked by a restore).
struct SavedHead {
  std::vector<int32_t> tokens;
  std::string adapters;
};
SavedHead peek_saved_state(const Engine& engine, model::KvTypes types, const std::string& path);
// The key of a LoRA set in saved state: each adapter's canonical path and scale. Adapters are
// named by path, so an adapter file replaced in place is not detected.
std::string lora_key(const model::LoraSet& set);
// The set a key names, built from the adapters of `loaded` (matched by canonical path, in the key's
// order, at the key's scales); nullopt when the key names an adapter not among them.
std::optional<model::LoraSet> lora_set_from_key(const std::string& key, const model::LoraSet& loaded);

}  // namespace edgellm::runtime
