#include "runtime/context_shift.h"

#include "model/kv_shift.h"

namespace edgellm::runtime {

ShiftPlan plan_context_shift(const std::vector<int32_t>& cached, const std::vector<int32_t>& prompt) {
  ShiftPlan p;
  const size_t old = cached.size();
  while (p.keep < old && p.keep < prompt.size() && cached[p.keep] == prompt[p.keep]) ++p.keep;
  if (p.keep == old || p.keep == prompt.size()) return p;
  for (size_t drop = 1; p.keep + drop + p.len < old; ++drop) {
    size_t len = 0;
    while (p.keep + drop + len < old && p.keep + len < prompt.size() && cached[p.keep + drop + len] == prompt[p.keep + len])
      ++len;
    if (len > p.len) p.len = len, p.drop = drop;
  }
  if (p.len < kMinShiftRun) p.len = 0, p.drop = 0;
  return p;
}

size_t apply_context_shift(const model::ModelConfig& config, model::KvCache& cache, std::vector<int32_t>& tokens,
                           const ShiftPlan& plan) {
  if (plan.len == 0) return plan.keep;
  const size_t end = plan.keep + plan.drop + plan.len;
  cache.truncate(static_cast<int32_t>(end));
  tokens.resize(end);
  model::shift_kv_cache(config, cache, static_cast<int32_t>(plan.keep), static_cast<int32_t>(plan.drop));
  tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(plan.keep),
               tokens.begin() + static_cast<std::ptrdiff_t>(plan.keep + plan.drop));
  return plan.keep + plan.len;
}

}  // namespace edgellm::runtime
