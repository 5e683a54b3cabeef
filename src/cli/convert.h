#pragma once
// `edgellm convert IN OUT`: the input's format picks the converter. Each format lives in its
// own convert_*.cpp and registers itself here (as commands do in command.h), so adding one
// never touches the others.
#include <functional>
#include <string>
#include <vector>

namespace edgellm::cli {

struct ConvertOptions {
  std::string out;       // the GGUF to write
  std::string type;      // weight type: "f32", "f16" or "" (the converter's default)
  std::string name;      // general.name ("" : from the input's name)
  bool quiet = false;
};

struct Converter {
  std::string name;         // shown in the help and in errors ("bert", ...)
  std::string description;  // what input it takes
  // Whether `in` is this converter's input (cheap: looks at file names, not contents).
  std::function<bool(const std::string& in)> accepts;
  // Converts; throws Error / ModelFormatError with the reason.
  std::function<void(const std::string& in, const ConvertOptions& opts)> run;
};

std::vector<Converter>& converter_registry();

struct ConverterRegistrar {
  explicit ConverterRegistrar(Converter c) { converter_registry().push_back(std::move(c)); }
};

}  // namespace edgellm::cli
