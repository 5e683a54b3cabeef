// edgellm convert DIR OUT: a CTranslate2 Whisper model folder -> GGUF (docs/whisper.md).
#include <cstdio>

#include "asr/convert.h"
#include "cli/command.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct ConvertArgs {
  std::string dir, out, type = "F16";
};

Registrar reg("convert", "Convert a CTranslate2 Whisper model folder to GGUF (F16/F32; then `quantize`)",
              [](CLI::App& app) {
                auto a = std::make_shared<ConvertArgs>();
                app.add_option("input", a->dir, "CTranslate2 model folder (model.bin, config.json, "
                               "tokenizer.json, vocabulary.txt)")->required();
                app.add_option("output", a->out, "Output GGUF")->required();
                app.add_option("--type", a->type, "F16 (default) or F32");
                app.callback([a] {
                  const auto t = io::type_from_name(a->type);
                  if (!t) throw InvalidArgument("unknown type '" + a->type + "' (F16 or F32)");
                  asr::convert_ct2_whisper(a->dir, a->out, *t);
                  std::printf("wrote %s (%s)\n", a->out.c_str(), a->type.c_str());
                });
              });

}  // namespace
}  // namespace edgellm::cli
