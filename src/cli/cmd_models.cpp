// edgellm models: the models known by short name, and whether each is in the model cache.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/models.h"

namespace edgellm::cli {
namespace {

void list_models(bool json) {
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& m : known_models())
      out.push_back({{"name", m.name},
                     {"model", m.title},
                     {"family", m.family},
                     {"quantization", m.quantization},
                     {"bytes", m.bytes},
                     {"file", m.file},
                     {"path", cached_path(m)},
                     {"cached", is_cached(m)},
                     {"default", &m == &default_model()},
                     {"fetch", fetch_command(m)}});
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%-20s %-28s %-7s %-7s %9s  %s\n", "NAME", "MODEL", "FAMILY", "QUANT", "SIZE", "CACHED");
  for (const auto& m : known_models()) {
    const std::string cached = is_cached(m) ? "yes" : "no, fetch with: " + fetch_command(m);
    std::printf("%-20s %-28s %-7s %-7s %5.0f MiB  %s\n", (m.name + (&m == &default_model() ? " *" : "")).c_str(),
                m.title.c_str(), m.family.c_str(), m.quantization.c_str(), m.bytes / 1048576.0, cached.c_str());
  }
  std::printf("\n* default of run, chat and serve. Use a NAME with -m (a GGUF path works too).\nModel cache: %s "
              "(EDGELLM_MODEL_DIR overrides it)\n",
              model_dir().c_str());
}

Registrar reg("models", "List the models known by short name and whether they are cached", [](CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "Print a JSON array");
  app.callback([json] { list_models(*json); });
});

}  // namespace
}  // namespace edgellm::cli
