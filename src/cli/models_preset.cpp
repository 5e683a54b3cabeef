#include "cli/models_preset.h"

#include <filesystem>
#include <sstream>

#include "cli/common.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

int32_t to_int(const std::string& v, const std::string& at) {
  try {
    size_t used = 0;
    const long n = std::stol(v, &used);
    if (used == v.size() && n > 0 && n <= (1L << 30)) return static_cast<int32_t>(n);
  } catch (const std::exception&) {
  }
  throw InvalidArgument(at + ": '" + v + "' is not a positive whole number");
}

}  // namespace

std::vector<PresetModel> parse_models_preset(const std::string& text, const std::string& where,
                                             const std::string& base_dir) {
  PresetModel defaults;
  std::vector<PresetModel> out;
  std::vector<int> lines;  // where each section starts, for its errors
  PresetModel* cur = nullptr;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string at = where + ":" + std::to_string(line_no);
    const std::string line = trim(raw);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    if (line.front() == '[') {
      if (line.back() != ']') throw InvalidArgument(at + ": a section header is [NAME]");
      const std::string name = trim(line.substr(1, line.size() - 2));
      if (name.empty()) throw InvalidArgument(at + ": a section needs a model name");
      if (name == "*") {
        cur = &defaults;
        continue;
      }
      for (const auto& m : out)
        if (m.name == name) throw InvalidArgument(at + ": the model name '" + name + "' is given twice");
      out.push_back({});
      out.back().name = name;
      lines.push_back(line_no);
      cur = &out.back();
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw InvalidArgument(at + ": expected KEY = VALUE or [NAME]");
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (!cur) throw InvalidArgument(at + ": '" + key + "' comes before any [NAME] section");
    if (key == "model" || key == "m") {
      if (cur == &defaults) throw InvalidArgument(at + ": [*] cannot name a model file");
      // A relative path is relative to the preset's folder; a short name stays a name.
      const bool looks_like_path = value.find('/') != std::string::npos ||
                                   (value.size() > 5 && value.compare(value.size() - 5, 5, ".gguf") == 0);
      cur->model = looks_like_path && !base_dir.empty() && std::filesystem::path(value).is_relative()
                       ? (std::filesystem::path(base_dir) / value).string()
                       : value;
    } else if (key == "ctx-size" || key == "c") {
      cur->n_ctx = to_int(value, at);
    } else if (key == "parallel" || key == "np") {
      cur->n_parallel = to_int(value, at);
    } else if (key == "cache-type-k" || key == "ctk") {
      cur->cache_type_k = value;
    } else if (key == "cache-type-v" || key == "ctv") {
      cur->cache_type_v = value;
    } else {
      throw InvalidArgument(at + ": unknown key '" + key +
                            "' (known: model, ctx-size, parallel, cache-type-k, cache-type-v)");
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    auto& m = out[i];
    if (m.model.empty())
      throw InvalidArgument(where + ":" + std::to_string(lines[i]) + ": [" + m.name + "] has no 'model = FILE'");
    if (!m.n_ctx) m.n_ctx = defaults.n_ctx;
    if (!m.n_parallel) m.n_parallel = defaults.n_parallel;
    if (!m.cache_type_k) m.cache_type_k = defaults.cache_type_k;
    if (!m.cache_type_v) m.cache_type_v = defaults.cache_type_v;
  }
  if (out.empty()) throw InvalidArgument(where + ": no [NAME] section: the preset names no model");
  return out;
}

std::vector<PresetModel> read_models_preset(const std::string& path) {
  if (!file_exists(path)) throw Error("--models-preset " + path + " does not exist");
  return parse_models_preset(read_file(path), path, std::filesystem::path(path).parent_path().string());
}

}  // namespace edgellm::cli
