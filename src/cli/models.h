#pragma once
// The models edgellm knows by short name (`-m qwen2.5-coder-0.5b`): one table, resolved against
// the model cache. scripts/fetch-models holds the same names, files and checksums
// (tests/python/test_cli_models.py checks that the two agree).
#include <cstdint>
#include <string>
#include <vector>

namespace edgellm::cli {

struct KnownModel {
  std::string name;          // short name for -m, and the argument of scripts/fetch-models
  std::string title;         // the published model
  std::string family;        // GGUF general.architecture
  std::string quantization;  // as shipped
  std::string file;          // file name inside the model cache
  uint64_t bytes;            // file size (the fetch script pins its SHA-256)
};

const std::vector<KnownModel>& known_models();
// The model of run, chat and serve when -m is not given.
const KnownModel& default_model();
// Null when `name` is not a short name.
const KnownModel* find_known_model(const std::string& name);
// "a, b, c" of every short name.
std::string known_model_names();
std::string fetch_command(const KnownModel& m);

// $EDGELLM_MODEL_DIR, else ~/.cache/edgellm/models.
std::string model_dir();
std::string cached_path(const KnownModel& m);
// The cached file exists with the table's size.
bool is_cached(const KnownModel& m);

}  // namespace edgellm::cli
