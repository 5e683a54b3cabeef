#include "cli/lora_flags.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "util/error.h"

namespace edgellm::cli {

void add_lora_flags(CLI::App& app, LoraFlags& f) {
  app.add_option("--lora", f.specs,
                 "LoRA adapter (GGUF) applied on top of the model, FILE or FILE:SCALE (scale 1 by default; "
                 "repeatable: adapters add up)");
}

std::vector<LoraSpec> parse_lora_specs(const LoraFlags& f) {
  std::vector<LoraSpec> out;
  for (const std::string& spec : f.specs) {
    std::error_code ec;
    LoraSpec s{spec, 1.0f};
    const size_t colon = spec.rfind(':');
    if (!std::filesystem::exists(spec, ec) && colon != std::string::npos) {
      const std::string num = spec.substr(colon + 1);
      char* end = nullptr;
      const float v = num.empty() ? NAN : std::strtof(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size() || !std::isfinite(v))
        throw InvalidArgument("--lora " + spec + ": the scale '" + num + "' is not a finite number (FILE[:SCALE])");
      s = {spec.substr(0, colon), v};
    }
    if (!std::filesystem::exists(s.path, ec)) throw Error("LoRA adapter file not found: " + s.path);
    if (std::filesystem::is_directory(s.path, ec)) throw Error("LoRA adapter path is a directory: " + s.path);
    out.push_back(s);
  }
  return out;
}

model::LoraSet load_lora(const std::vector<LoraSpec>& specs, const model::Model& model) {
  model::LoraSet set;
  for (const LoraSpec& s : specs) {
    auto ad = model::LoraAdapter::load(s.path, model);
    const auto& in = ad->info();
    const std::string ranks = in.rank_min == in.rank_max ? std::to_string(in.rank_min)
                                                         : std::to_string(in.rank_min) + "-" + std::to_string(in.rank_max);
    std::fprintf(stderr, "[lora %s: %d matrices, rank %s, alpha %g, scale %g, %.1f MiB]\n", s.path.c_str(),
                 in.n_pairs, ranks.c_str(), in.alpha, s.scale, ad->bytes() / 1048576.0);
    for (const std::string& t : in.ignored)
      std::fprintf(stderr, "[lora %s: tensor %s ignored (norm vectors are not applied, as in llama.cpp)]\n",
                   s.path.c_str(), t.c_str());
    set.entries.push_back({std::move(ad), s.scale});
  }
  return set;
}

}  // namespace edgellm::cli
