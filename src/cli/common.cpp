#include "cli/common.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hybrid/policy.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::cli {

std::string resolve_model(const std::string& name_or_path) {
  const KnownModel* known = name_or_path.empty() ? &default_model() : find_known_model(name_or_path);
  std::error_code ec;
  if (known) {
    const std::string p = cached_path(*known);
    if (!std::filesystem::exists(p, ec))
      throw Error(std::string(name_or_path.empty() ? "the default model " : "model ") + known->name + " (" +
                  known->title + " " + known->quantization + ") is not in the model cache " + model_dir() +
                  "; fetch it with: " + fetch_command(*known) + " (known models: " + known_model_names() +
                  "; `edgellm models` lists them)");
    return p;
  }
  const std::string& p = name_or_path;
  if (!std::filesystem::exists(p, ec))
    throw Error("model file not found: " + p + " (-m takes a GGUF path or a short name: " + known_model_names() +
                "; `edgellm models` lists them)");
  if (std::filesystem::is_directory(p, ec)) throw Error("model path is a directory, not a file: " + p);
  return p;
}

std::string model_help() {
  return "Model: a short name (`edgellm models` lists them; default " + default_model().name + ") or a GGUF file";
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

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

void add_hybrid_flags(CLI::App& app, HybridFlags& f) {
  app.add_option("--policy", f.policy_file, "Hybrid device/cloud routing policy (JSON, see docs/hybrid.md)");
  app.add_option("--cloud", f.cloud_url,
                 "OpenAI-compatible cloud endpoint, e.g. http://host:8080/v1 (prefer-local routing unless --policy)");
  app.add_option("--cloud-model", f.cloud_model, "Model name to ask the cloud endpoint for");
}

std::shared_ptr<hybrid::Policy> make_policy(const HybridFlags& f) {
  if (f.policy_file.empty() && f.cloud_url.empty()) {
    if (!f.cloud_model.empty()) throw InvalidArgument("--cloud-model needs --cloud or --policy");
    return nullptr;
  }
  auto p = std::make_shared<hybrid::Policy>(f.policy_file.empty() ? hybrid::default_policy()
                                                                  : hybrid::load_policy_file(f.policy_file));
  if (f.policy_file.empty()) p->name = "cli";
  if (!f.cloud_url.empty()) {
    if (f.cloud_url.rfind("http://", 0) != 0 && f.cloud_url.rfind("https://", 0) != 0)
      throw InvalidArgument("--cloud must be an http:// or https:// URL, got '" + f.cloud_url + "'");
    p->cloud.base_url = f.cloud_url;
  }
  if (!f.cloud_model.empty()) p->cloud.model = f.cloud_model;
  return p;
}

hybrid::HybridResponse routed_turn(hybrid::Orchestrator& orch, runtime::Session& session,
                                   const std::vector<int32_t>& ids, const runtime::GenerateParams& gp,
                                   const nlohmann::json& messages) {
  auto print = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  hybrid::HybridRequest hr;
  hr.body = {{"messages", messages}, {"temperature", gp.sampling.temperature}, {"top_p", gp.sampling.top_p}};
  if (gp.max_tokens > 0) hr.body["max_tokens"] = gp.max_tokens;
  hr.request_id = "cli";
  hr.app = "edgellm-cli";
  hr.prompt_tokens = static_cast<int64_t>(ids.size());
  hr.prompt = ids;
  hr.params = gp;
  hybrid::SessionBackend device(session);
  hybrid::StreamFn on_delta = print;
  hybrid::StreamBreakFn on_break = [](const std::string& msg) {
    std::fprintf(stderr, "\n[cloud answer broke off (%s); answering on the device]\n", msg.c_str());
    return true;
  };
  hybrid::HybridResponse out = orch.handle(hr, device, &on_delta, on_break);
  std::printf("\n");
  const auto& r = out.route;
  std::string notes;
  for (const auto& n : r.notes) notes += (notes.empty() ? "" : ",") + n;
  if (!notes.empty()) notes = " (" + notes + ")";
  if (!r.cloud_error.empty()) notes += "; cloud error " + r.cloud_error;
  std::fprintf(stderr, "[tier %s: %s%s]\n", r.tier == hybrid::Tier::Cloud ? "cloud" : "local", r.reason.c_str(),
               notes.c_str());
  if (!out.ok) throw Error("the answer broke off: " + out.error);
  return out;
}

}  // namespace edgellm::cli

namespace edgellm::cli {

void add_kv_type_flags(CLI::App& app, KvTypeFlags& f) {
  f.k_opt = app.add_option("--cache-type-k", f.k, "KV cache key type (-ctk): f32, f16, q8_0, q4_0")->capture_default_str();
  f.v_opt = app.add_option("--cache-type-v", f.v, "KV cache value type (-ctv): f32, f16, q8_0, q4_0")->capture_default_str();
}

model::KvTypes kv_types(const KvTypeFlags& f) {
  return {model::kv_type_from_name(f.k, "-ctk"), model::kv_type_from_name(f.v, "-ctv")};
}

}  // namespace edgellm::cli
