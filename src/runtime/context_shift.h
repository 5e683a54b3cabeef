#pragma once
// Context shift on a cache that holds tokens of an earlier prompt (Session::shift_to, the
// scheduler's slots): after the common prefix (a system prompt), find the cached span that
// reappears next in the new prompt (the turns kept after the oldest were dropped), remove the
// tokens before it and move it down with re-rotated keys (model::shift_kv_cache) instead of
// recomputing it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/kv_cache.h"

namespace edgellm::runtime {

// Shortest cached run worth moving. The run's keys were computed after the dropped tokens, so
// moving them is an approximation that only pays for a kept span of whole turns; short runs match
// by chance (a space, a digit, a template tag) in unrelated requests sharing a slot, and moving
// those changed a following answer (SmolLM2, one slot: "What is 7 plus 8?" after another question
// answered "21", alone "To add 7 and 8, ..."). Shorter runs are recomputed.
constexpr size_t kMinShiftRun = 16;

struct ShiftPlan {
  size_t keep = 0;  // common prefix of the cached tokens and the prompt
  size_t drop = 0;  // cached tokens removed after it
  size_t len = 0;   // cached tokens after the drop that continue the prompt (0: none of at least kMinShiftRun)
};
// The drop that lets the longest cached run continue `prompt` after the common prefix (len 0 when
// that run is shorter than kMinShiftRun).
ShiftPlan plan_context_shift(const std::vector<int32_t>& cached, const std::vector<int32_t>& prompt);

// Applies a plan with len > 0 to a cache holding `tokens`: keeps keep + len tokens of the prompt
// (returned), the rest of the cache is cut. Does nothing and returns plan.keep when len is 0.
size_t apply_context_shift(const model::ModelConfig& config, model::KvCache& cache, std::vector<int32_t>& tokens,
                           const ShiftPlan& plan);

}  // namespace edgellm::runtime
