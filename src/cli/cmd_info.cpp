// edgellm info: a GGUF file's metadata and tensor table.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "ops/ops.h"
#include "cli/common.h"
#include "cli/mem_flags.h"
#include "model/lora.h"

#include <nlohmann/json.hpp>

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

struct MemArgs {
  bool on = false, json = false;
  int32_t n_ctx = 4096, n_parallel = 1, n_batch = 0, threads = 0;
  KvTypeFlags kv;
};

// What the model would take in memory with `run` (one slot) or `serve --parallel N`.
void info_mem(const std::string& model, const MemArgs& a) {
  if (a.n_ctx <= 0 || a.n_parallel <= 0) throw InvalidArgument("-c and --parallel must be positive");
  const std::string path = resolve_model(model);
  // run/chat evaluate prompts 512 tokens at a time; the server's default -b is 256.
  const int32_t batch = a.n_batch > 0 ? a.n_batch : a.n_parallel > 1 ? 256 : 512;
  const runtime::MemBreakdown m = mem_breakdown(path, a.n_ctx, a.n_parallel, kv_types(a.kv), batch, a.threads);
  const runtime::WeightMemory& w = m.weights;
  const std::string k = model::kv_type_name(m.kv_types.k), v = model::kv_type_name(m.kv_types.v);
  if (a.json) {
    nlohmann::json types = w.repacked_types, names = nlohmann::json::object();
    for (const auto& [n, c] : w.repacked_names) names[n] = c;
    const nlohmann::json j = {
        {"model", path},
        {"weights",
         {{"file_bytes", w.file_bytes}, {"mapped_bytes", w.mapped}, {"embedding_bytes", w.embedding},
          {"repacked_tensors", w.n_repacked}, {"repacked_types", types}, {"repacked_names", names}, {"repacked_source_bytes", w.repacked_src},
          {"repacked_bytes", w.repacked}, {"vector_bytes", w.vectors}, {"resident_bytes", w.resident()}}},
        {"kv_cache",
         {{"type_k", k}, {"type_v", v}, {"bytes_per_token", m.kv_per_token}, {"n_ctx", m.n_ctx},
          {"n_slots", m.n_slots}, {"bytes", m.kv}}},
        {"workspace", {{"n_batch", batch}, {"bytes", m.workspace}}},
        {"tokenizer_bytes", m.tokenizer},
        {"total_bytes", m.total()}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  using runtime::format_bytes;
  std::string types;
  for (const auto& t : w.repacked_types) types += (types.empty() ? "" : ", ") + t;
  std::printf("memory of %s (%s/%s KV cache, context %d, %d slot%s, passes of %d tokens)\n", path.c_str(), k.c_str(),
              v.c_str(), m.n_ctx, m.n_slots, m.n_slots == 1 ? "" : "s", batch);
  std::printf("  weights mapped, read in place   %12s\n", format_bytes(w.mapped).c_str());
  std::printf("  weights repacked (%d tensors%s%s) %s; their %s in the file are released after the copy\n",
              w.n_repacked, types.empty() ? "" : ": ", types.c_str(), format_bytes(w.repacked).c_str(),
              format_bytes(w.repacked_src).c_str());
  std::string names;
  for (const auto& [n, c] : w.repacked_names) names += " " + n + (c > 1 ? " x" + std::to_string(c) : "");
  if (!names.empty()) std::printf("    repacked:%s\n", names.c_str());
  std::printf("  norms and biases as fp32        %12s\n", format_bytes(w.vectors).c_str());
  std::printf("  token embedding (mapped; only looked-up rows page in, not in the total) %s\n",
              format_bytes(w.embedding).c_str());
  std::printf("  KV cache: %llu bytes per token x %d x %d slot%s %s\n", static_cast<unsigned long long>(m.kv_per_token),
              m.n_ctx, m.n_slots, m.n_slots == 1 ? "" : "s", format_bytes(m.kv).c_str());
  std::printf("  workspace                       %12s\n", format_bytes(m.workspace).c_str());
  std::printf("  tokenizer and vocabulary        %12s\n", format_bytes(m.tokenizer).c_str());
  std::printf("  total                           %12s (%llu bytes)\n", format_bytes(m.total()).c_str(),
              static_cast<unsigned long long>(m.total()));
}

Registrar reg("info", "Show a GGUF file's metadata and tensors", [](CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto no_tensors = std::make_shared<bool>(false);
  auto isa = std::make_shared<bool>(false);
  app.add_option("-m,--model,file", *model, "GGUF file");
  app.add_flag("--no-tensors", *no_tensors, "Metadata only");
  app.add_flag("--isa", *isa, "Print the instruction set in use, then all this CPU can use, and exit");
  auto mem = std::make_shared<MemArgs>();
  app.add_flag("--mem", mem->on, "Print the memory the model takes (weights, KV cache, workspace) and exit");
  app.add_flag("--json", mem->json, "With --mem: as JSON");
  app.add_option("-c,--ctx-size", mem->n_ctx, "With --mem: context size per slot")->capture_default_str();
  app.add_option("-P,--parallel", mem->n_parallel, "With --mem: slots (serve --parallel)")->capture_default_str();
  app.add_option("-b,--batch", mem->n_batch, "With --mem: tokens per forward pass (0: 512, or 256 with --parallel > 1)");
  app.add_option("-t,--threads", mem->threads, "With --mem: threads (0 = physical cores)");
  add_kv_type_flags(app, mem->kv);
  app.callback([model, no_tensors, isa, mem] {
    if (mem->on) return info_mem(*model, *mem);
    if (mem->json) throw InvalidArgument("--json goes with --mem (the breakdown); metadata is printed as text");
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
