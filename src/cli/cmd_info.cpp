// edgellm info: a GGUF file's metadata and tensor table.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "ops/ops.h"
#include "cli/common.h"
#include "model/lora.h"

namespace edgellm::cli {
namespace {

std::string show(const io::Value& v) {
  using io::ValueType;
  if (v.is_array()) {
    std::string s = "[" + std::to_string(v.array_size()) + " items";
    if (!v.strings.empty()) s += ": \"" + v.strings[0].substr(0, 40) + "\", ...";
    else if (!v.ints.empty()) s += ": " + std::to_string(v.ints[0]) + ", ...";
    else if (!v.floats.empty()) s += ": " + std::to_string(v.floats[0]) + ", ...";
    return s + "]";
  }
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) return "";
        else if constexpr (std::is_same_v<T, std::string>) {
          std::string s = x.size() > 120 ? x.substr(0, 120) + "..." : x;
          for (char& c : s)
            if (c == '\n') c = ' ';
          return "\"" + s + "\"";
        } else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else return std::to_string(x);
      },
      v.scalar);
}

void info(const std::string& model, bool tensors) {
  auto f = io::GgufFile::open(resolve_model(model));
  std::printf("file: %s\nGGUF version %u, %llu bytes, %zu metadata keys, %zu tensors, alignment %u\n\n",
              f->path().c_str(), f->version(), static_cast<unsigned long long>(f->file_size()),
              f->metadata().size(), f->tensors().size(), f->alignment());
  for (const auto& [k, v] : f->metadata()) std::printf("%-45s %s\n", k.c_str(), show(v).c_str());
  if (f->get_string("general.type").value_or("") == "adapter") {
    // Checked as `--lora` would (without a base model): a broken adapter is an error here too.
    const model::LoraInfo in = model::inspect_lora(*f);
    std::printf("\nLoRA adapter for %s: %d matrices, rank %d", in.arch.c_str(), in.n_pairs, in.rank_min);
    if (in.rank_max != in.rank_min) std::printf("-%d", in.rank_max);
    std::printf(", alpha %g, %llu parameters\n", in.alpha, static_cast<unsigned long long>(in.n_params));
    if (in.rank_min == in.rank_max)
      std::printf("scale at --lora FILE:1: %g (alpha / rank)\n", in.alpha != 0 ? in.alpha / in.rank_min : 1.0);
    // Layers adapted per projection ("blk.N.attn_q.weight" counted under attn_q.weight).
    std::vector<std::pair<std::string, int>> per;
    for (const auto& t : in.targets) {
      const size_t dot = t.rfind('.', t.size() - sizeof(".weight"));
      const std::string key = t.rfind("blk.", 0) == 0 && dot != std::string::npos ? t.substr(dot + 1) : t;
      auto it = std::find_if(per.begin(), per.end(), [&](const auto& p) { return p.first == key; });
      if (it == per.end()) per.push_back({key, 1});
      else ++it->second;
    }
    std::printf("adapted:");
    for (const auto& [k, n] : per) std::printf(" %s x%d", k.c_str(), n);
    std::printf("\n");
    for (const auto& t : in.ignored) std::printf("ignored: %s (norm vectors are not applied)\n", t.c_str());
  }
  if (!tensors) return;
  std::printf("\n%-36s %-6s %-22s %12s\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : f->tensors()) {
    std::string shape;
    for (size_t i = 0; i < t.ne.size(); ++i) shape += (i ? " x " : "") + std::to_string(t.ne[i]);
    std::printf("%-36s %-6s %-22s %12llu\n", t.name.c_str(), std::string(io::type_name(t.type)).c_str(),
                shape.c_str(), static_cast<unsigned long long>(t.nbytes));
  }
}

Registrar reg("info", "Show a GGUF file's metadata and tensors", [](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto no_tensors = std::make_shared<bool>(false);
  auto isa = std::make_shared<bool>(false);
  app.add_option("-m,--model,file", *model, "GGUF file");
  app.add_flag("--no-tensors", *no_tensors, "Metadata only");
  app.add_flag("--isa", *isa, "Print the instruction set in use, then all this CPU can use, and exit");
  app.callback([model, no_tensors, isa] {
    if (*isa) {
      std::printf("%s\n", ops::active_isa().c_str());
      for (const std::string& name : ops::available_isas()) std::printf("%s ", name.c_str());
      std::printf("\n");
      return;
    }
    info(*model, !*no_tensors);
  });
});

}  // namespace
}  // namespace edgellm::cli
