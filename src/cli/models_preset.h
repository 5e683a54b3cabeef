#pragma once
// serve --models-preset FILE: the models one server serves, in llama-server's router INI format.
// One section per model, named as clients name it in "model"; a [*] section gives defaults:
//
//   [*]
//   ctx-size = 2048
//   [small]
//   model = smollm2-135m          ; a short name or a GGUF path (relative to the file's folder)
//   parallel = 2
//   cache-type-k = q8_0
//
// Keys: model (m), ctx-size (c), parallel (np), cache-type-k (ctk), cache-type-v (ctv). Flags given
// on the command line win over the file, as in llama-server.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace edgellm::cli {

struct PresetModel {
  std::string name, model;
  std::optional<int32_t> n_ctx, n_parallel;
  std::optional<std::string> cache_type_k, cache_type_v;
};

// InvalidArgument naming the file and line for anything it does not understand (unknown key,
// a section without "model", a bad number, a name given twice).
std::vector<PresetModel> parse_models_preset(const std::string& text, const std::string& where,
                                             const std::string& base_dir = "");
std::vector<PresetModel> read_models_preset(const std::string& path);

}  // namespace edgellm::cli
