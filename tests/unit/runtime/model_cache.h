#pragma once
// Where the runtime tests find the real models: the model cache scripts/fetch-models fills
// (EDGELLM_MODEL_DIR, else ~/.cache/edgellm/models). Tests skip when a model is absent.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "runtime/engine.h"

namespace edgellm::runtime::testing {

inline std::string cached_model_path(const std::string& name) {
  const char* d = std::getenv("EDGELLM_MODEL_DIR");
  const char* home = std::getenv("HOME");
  return (d ? std::string(d) : std::string(home ? home : "") + "/.cache/edgellm/models") + "/" + name;
}

// The model on 2 threads, or nullptr when it is not in the cache.
inline std::unique_ptr<Engine> load_cached_or_null(const std::string& name) {
  const std::string path = cached_model_path(name);
  if (!std::filesystem::exists(path)) return nullptr;
  return Engine::load(path, {2});
}

}  // namespace edgellm::runtime::testing
