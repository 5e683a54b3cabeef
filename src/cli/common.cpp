#include "cli/common.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::cli {

std::string model_dir() {
  if (const char* d = std::getenv("EDGELLM_MODEL_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/edgellm/models";
}

std::string resolve_model(const std::string& path) {
  const std::string p = path.empty() ? model_dir() + "/" + kDefaultModel : path;
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) {
    if (path.empty())
      throw Error("default model not found at " + p + "; fetch it with: scripts/fetch-models");
    throw Error("model file not found: " + p);
  }
  if (std::filesystem::is_directory(p, ec)) throw Error("model path is a directory, not a file: " + p);
  return p;
}

void add_sampling_flags(CLI::App& app, sampling::SamplingParams& p) {
  app.add_option("--temp", p.temperature, "Temperature (0 = greedy)")->capture_default_str();
  app.add_option("--top-k", p.top_k, "Top-k (0 = off)")->capture_default_str();
  app.add_option("--top-p", p.top_p, "Top-p (1 = off)")->capture_default_str();
  app.add_option("--min-p", p.min_p, "Min-p (0 = off)")->capture_default_str();
  app.add_option("--repeat-penalty", p.repeat_penalty, "Repetition penalty (1 = off)")->capture_default_str();
  app.add_option("--repeat-last-n", p.repeat_last_n, "Tokens the penalties look back on (-1 = all)")
      ->capture_default_str();
  app.add_option("--presence-penalty", p.presence_penalty, "Presence penalty")->capture_default_str();
  app.add_option("--frequency-penalty", p.frequency_penalty, "Frequency penalty")->capture_default_str();
  app.add_option("-s,--seed", p.seed, "Random seed")->capture_default_str();
}

void add_exact_flag(CLI::App& app) {
  app.add_flag_callback("--exact", [] { ops::set_exact_activations(true); },
                        "fp32 activations in matmuls (slower; matches an fp32 reference closely)");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file: " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace edgellm::cli
