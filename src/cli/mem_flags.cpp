#include "cli/mem_flags.h"

#include <algorithm>
#include <cstdio>

#include "model/config.h"
#include "ops/thread_pool.h"

namespace edgellm::cli {
namespace {
int32_t threads_in_use(int32_t n_threads) { return n_threads > 0 ? n_threads : ops::ThreadPool::physical_cores(); }
}  // namespace

void add_mem_budget_flag(CLI::App& app, std::string& budget) {
  app.add_option("--mem-budget", budget,
                 "Memory for weights, tokenizer, KV cache and workspace (1.5G, 800M, or a fraction of RAM such as 0.5): "
                 "chooses the context, the KV type (unless -ctk/-ctv are given) and the slots that fit");
}

runtime::MemBreakdown mem_breakdown(const std::string& path, int32_t n_ctx, int32_t n_slots, model::KvTypes kv,
                                    int32_t n_batch, int32_t n_threads) {
  auto f = io::GgufFile::open(path);
  const model::ModelConfig c = model::config_from_gguf(*f);
  runtime::MemBreakdown m;
  m.weights = runtime::estimate_weights(*f, c);
  m.kv_types = kv;
  m.kv_per_token = model::kv_bytes_per_token(c, kv);
  m.n_ctx = n_ctx;
  m.n_slots = n_slots;
  m.kv = m.kv_per_token * static_cast<uint64_t>(n_ctx) * static_cast<uint64_t>(n_slots);
  m.workspace = runtime::workspace_bytes(c, std::min(n_batch, n_ctx), n_ctx, threads_in_use(n_threads), n_slots);
  m.tokenizer = runtime::tokenizer_bytes(*f);
  return m;
}

uint64_t apply_mem_budget(const std::string& budget, const std::string& model, int32_t& n_ctx, int32_t* n_slots,
                          KvTypeFlags& kv, int32_t n_batch, int32_t n_threads, const std::string& draft) {
  if (budget.empty()) return 0;
  const uint64_t bytes = runtime::parse_mem_size(budget, runtime::physical_ram_bytes());
  if (n_ctx <= 0) throw InvalidArgument("context size must be positive, got " + std::to_string(n_ctx));
  const int32_t slots_max = n_slots ? std::max(*n_slots, 1) : 1;
  const std::string path = resolve_model(model);
  auto f = io::GgufFile::open(path);
  const model::ModelConfig c = model::config_from_gguf(*f);
  runtime::BudgetRequest r;
  r.budget = bytes;
  r.n_ctx_max = n_ctx;
  r.n_slots_max = slots_max;
  // Workspace at the largest context and slot count: an upper bound whatever is chosen.
  r.fixed = runtime::estimate_weights(*f, c).resident() + runtime::tokenizer_bytes(*f) +
            runtime::workspace_bytes(c, std::min(n_batch, n_ctx), n_ctx, threads_in_use(n_threads), slots_max);
  uint64_t draft_per_token = 0;  // the draft's cache per token of context, whatever the target's types
  if (!draft.empty()) {
    auto df = io::GgufFile::open(draft);
    const model::ModelConfig dc = model::config_from_gguf(*df);
    r.fixed += runtime::estimate_weights(*df, dc).resident() + runtime::tokenizer_bytes(*df) +
               runtime::workspace_bytes(dc, std::min(n_batch, n_ctx), n_ctx, threads_in_use(n_threads), slots_max);
    draft_per_token = model::kv_bytes_per_token(dc, {});
  }
  if (kv.set()) {
    const model::KvTypes t = kv_types(kv);
    r.kv_candidates.push_back({t, model::kv_bytes_per_token(c, t) + draft_per_token});
  } else {
    for (io::TensorType t : {io::TensorType::F32, io::TensorType::F16, io::TensorType::Q8_0})
      r.kv_candidates.push_back({{t, t}, model::kv_bytes_per_token(c, {t, t}) + draft_per_token});
  }
  const runtime::BudgetChoice ch = runtime::choose_memory(r);
  n_ctx = ch.n_ctx;
  if (n_slots) *n_slots = ch.n_slots;
  kv.k = model::kv_type_name(ch.kv_types.k);
  kv.v = model::kv_type_name(ch.kv_types.v);
  std::fprintf(stderr, "mem-budget %s: context %d, KV cache %s/%s, %d slot%s (weights + workspace %s, KV %s, total %s%s)\n",
               runtime::format_bytes(bytes).c_str(), ch.n_ctx, kv.k.c_str(), kv.v.c_str(), ch.n_slots,
               ch.n_slots == 1 ? "" : "s", runtime::format_bytes(r.fixed).c_str(),
               runtime::format_bytes(ch.kv_bytes).c_str(), runtime::format_bytes(ch.total).c_str(),
               draft.empty() ? "" : "; the draft model's weights and KV cache included");
  std::fflush(stderr);
  return ch.total;
}

}  // namespace edgellm::cli
