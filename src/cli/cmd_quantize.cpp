// edgellm quantize IN OUT TYPE: convert a GGUF model's weights to another format.
#include <cstdio>

#include "cli/command.h"
#include "cli/common.h"
#include "model/quantize.h"

namespace edgellm::cli {
namespace {

struct QuantArgs {
  std::string in, out, type;
  bool quiet = false;
};

Registrar reg("quantize", "Convert a GGUF model to another weight format (e.g. Q4_0, Q8_0, Q4_K_M)",
              [](CLI::App& app) {
                auto a = std::make_shared<QuantArgs>();
                app.add_option("input", a->in, "Input GGUF")->required();
                app.add_option("output", a->out, "Output GGUF")->required();
                app.add_option("type", a->type, "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M")
                    ->required();
                app.add_flag("-q,--quiet", a->quiet, "No per-tensor output");
                app.callback([a] {
                  const auto target = model::parse_quant_target(a->type);
                  const bool quiet = a->quiet;
                  model::quantize_file(resolve_model(a->in), a->out, target,
                                       [quiet](const std::string& name, io::TensorType t) {
                                         if (!quiet)
                                           std::printf("%-36s %s\n", name.c_str(), std::string(io::type_name(t)).c_str());
                                       });
                  std::printf("wrote %s (%s)\n", a->out.c_str(), target.name.c_str());
                });
              });

}  // namespace
}  // namespace edgellm::cli
