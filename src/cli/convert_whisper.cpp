// `edgellm convert` for a CTranslate2 Whisper model folder (docs/whisper.md): F16 by default, F32
// with --type f32; quantized files come from `edgellm quantize` afterwards.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "asr/convert.h"
#include "cli/convert.h"
#include "io/tensor_type.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

bool is_ct2_folder(const std::string& in) {
  namespace fs = std::filesystem;
  std::error_code ec;
  return fs::is_directory(in, ec) && fs::is_regular_file(fs::path(in) / "model.bin", ec) &&
         fs::is_regular_file(fs::path(in) / "config.json", ec);
}

void convert(const std::string& in, const ConvertOptions& opts) {
  std::string name = opts.type.empty() ? "F16" : opts.type;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  const auto t = io::type_from_name(name);
  if (!t || (*t != io::TensorType::F16 && *t != io::TensorType::F32))
    throw InvalidArgument("unknown type '" + opts.type + "' for a Whisper model (f16 or f32)");
  asr::convert_ct2_whisper(in, opts.out, *t);
  if (!opts.quiet) std::printf("wrote %s (%s)\n", opts.out.c_str(), name.c_str());
}

const ConverterRegistrar reg({"whisper-ct2", "a CTranslate2 Whisper model folder (model.bin, config.json, "
                              "tokenizer.json or vocabulary.txt)", is_ct2_folder, convert});

}  // namespace
}  // namespace edgellm::cli
