// edgellm convert IN OUT: a model in another format -> GGUF. The converter is chosen by what IN
// is (convert.h); an input no converter takes is refused with the list of accepted inputs.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/convert.h"
#include "util/error.h"

namespace edgellm::cli {

std::vector<Converter>& converter_registry() {
  static std::vector<Converter> registry;
  return registry;
}

namespace {

struct ConvertArgs {
  std::string in;
  ConvertOptions opts;
};

Registrar reg("convert", "Convert a model from another format to GGUF (the input's format picks the converter)",
              [](CLI::App& app) {
                auto a = std::make_shared<ConvertArgs>();
                app.add_option("input", a->in, "Input model (file or folder)")->required();
                app.add_option("output", a->opts.out, "Output GGUF")->required();
                app.add_option("--type", a->opts.type, "Weight type: f32 or f16 (default: the converter's)");
                app.add_option("--name", a->opts.name, "general.name (default: from the input's name)");
                app.add_flag("-q,--quiet", a->opts.quiet, "No per-tensor output");
                app.callback([a] {
                  for (const Converter& c : converter_registry())
                    if (c.accepts(a->in)) {
                      c.run(a->in, a->opts);
                      return;
                    }
                  std::string list;
                  for (const Converter& c : converter_registry()) list += "\n  " + c.name + ": " + c.description;
                  throw InvalidArgument("no converter takes '" + a->in + "'; accepted inputs:" + list);
                });
              });

}  // namespace
}  // namespace edgellm::cli
