#include "cli/models.h"

#include <cstdlib>
#include <filesystem>

namespace edgellm::cli {

const std::vector<KnownModel>& known_models() {
  // First entry: the default. Qwen2.5-Coder-0.5B answers general questions well at interactive
  // speed; SmolLM2 stays the model of the fast tests.
  static const std::vector<KnownModel> table = {
      {"qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "qwen2", "Q4_K_M",
       "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491400064},
      {"qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "qwen2", "Q4_K_M",
       "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1117320768},
      {"smollm2-135m", "SmolLM2-135M-Instruct", "llama", "Q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", 98362432},
      {"gemma3-270m", "Gemma-3-270M", "gemma3", "Q4_K_M", "gemma-3-270m-q4_k_m.gguf", 253113024},
  };
  return table;
}

const KnownModel& default_model() { return known_models().front(); }

const KnownModel* find_known_model(const std::string& name) {
  for (const auto& m : known_models())
    if (m.name == name) return &m;
  return nullptr;
}

std::string known_model_names() {
  std::string s;
  for (const auto& m : known_models()) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

std::string fetch_command(const KnownModel& m) { return "scripts/fetch-models " + m.name; }

std::string model_dir() {
  if (const char* d = std::getenv("EDGELLM_MODEL_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/edgellm/models";
}

std::string cached_path(const KnownModel& m) { return model_dir() + "/" + m.file; }

bool is_cached(const KnownModel& m) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(cached_path(m), ec);
  return !ec && size == m.bytes;
}

}  // namespace edgellm::cli
