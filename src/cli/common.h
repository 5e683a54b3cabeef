#pragma once
// Shared pieces of the subcommands: model lookup, sampling flags, reading prompt files.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/models.h"
#include "hybrid/orchestrator.h"
#include "runtime/engine.h"

namespace edgellm::cli {

// The file -m names: empty -> the default model (models.h) in the cache; a short name from
// known_models() -> that model in the cache (a name wins over a file of the same name in the
// working directory: write ./NAME for the file); anything else is a path. Throws Error naming
// the fetch command when a known model is not cached, and the short names when a path does
// not exist.
std::string resolve_model(const std::string& name_or_path);
// Help text of -m.
std::string model_help();

// Adds llama.cpp-style sampling flags that fill `p`.
void add_sampling_flags(CLI::App& app, sampling::SamplingParams& p);

std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

// KV cache storage types, llama.cpp's flags: -ctk / --cache-type-k and -ctv / --cache-type-v
// (f32, f16, q8_0, q4_0; f32 by default). main.cpp maps the single-dash spellings, which CLI11
// does not accept as option names.
struct KvTypeFlags {
  std::string k = "f32", v = "f32";
  // The options, to ask whether the user gave either (--mem-budget then keeps the types).
  const CLI::Option *k_opt = nullptr, *v_opt = nullptr;
  bool given = false;  // set elsewhere (serve --models-preset)
  bool set() const { return given || (k_opt && k_opt->count() > 0) || (v_opt && v_opt->count() > 0); }
};
void add_kv_type_flags(CLI::App& app, KvTypeFlags& f);
// The parsed types; InvalidArgument naming the flag and the valid types.
model::KvTypes kv_types(const KvTypeFlags& f);

// --exact: fp32 activations in every matmul (see ops::set_exact_activations).
void add_exact_flag(CLI::App& app);

// Hybrid device/cloud routing (docs/hybrid.md): --policy FILE, --cloud URL (shortcut for a
// prefer-local policy with that OpenAI-compatible endpoint; with --policy it replaces the
// file's cloud.base_url), --cloud-model NAME.
struct HybridFlags {
  std::string policy_file, cloud_url, cloud_model;
};
void add_hybrid_flags(CLI::App& app, HybridFlags& f);
// Null when no flag asks for routing. Throws InvalidArgument for a bad policy.
std::shared_ptr<hybrid::Policy> make_policy(const HybridFlags& f);

// One chat turn of `run` / `chat` through the orchestrator: the device generates with `session`
// (streaming to stdout unless the policy holds the answer for judging), the cloud gets `messages`.
// Prints the routed answer on stdout and which tier answered, and why, on stderr.
hybrid::HybridResponse routed_turn(hybrid::Orchestrator& orch, runtime::Session& session,
                                   const std::vector<int32_t>& ids, const runtime::GenerateParams& gp,
                                   const nlohmann::json& messages);

}  // namespace edgellm::cli
