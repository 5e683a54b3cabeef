#pragma once
// --mem-budget on run / chat / serve, and the memory breakdown `info --mem` prints
// (runtime/mem_budget.h does the arithmetic).
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "runtime/mem_budget.h"

namespace edgellm::cli {

// Adds --mem-budget SIZE (1.5G, 800M, or a fraction of RAM such as 0.5).
void add_mem_budget_flag(CLI::App& app, std::string& budget);

// The breakdown of the model at `path` (resolved) with these settings; n_batch is the longest
// forward pass (run/chat: 512 prompt tokens; serve: -b), n_slots the sequences held at once.
runtime::MemBreakdown mem_breakdown(const std::string& path, int32_t n_ctx, int32_t n_slots, model::KvTypes kv,
                                    int32_t n_batch, int32_t n_threads);

// Does nothing when `budget` is empty. Otherwise chooses the context (at most n_ctx), the KV types
// (kv untouched when the user set -ctk/-ctv) and, when n_slots is given, the slot count that fit;
// updates them and prints the choice on stderr in one line. InvalidArgument when nothing fits.
// Returns the chosen total (0 without a budget). `draft` (a resolved path, or empty): a draft
// model for speculation that comes with it; its weights, tokenizer and workspace count as fixed,
// and its KV cache (one per slot, default types, the same context) grows with the context chosen.
uint64_t apply_mem_budget(const std::string& budget, const std::string& model, int32_t& n_ctx, int32_t* n_slots,
                          KvTypeFlags& kv, int32_t n_batch, int32_t n_threads, const std::string& draft = "");

}  // namespace edgellm::cli
