#include "runtime/proposer.h"

#include <algorithm>
#include <string>

#include "util/error.h"

namespace edgellm::runtime {

PromptLookupProposer::PromptLookupProposer(int32_t n_max, int32_t n_min) : n_max_(n_max), n_min_(n_min) {
  if (n_min < 1 || n_max < n_min)
    throw InvalidArgument("prompt lookup needs 1 <= n_min <= n_max, got n_min " + std::to_string(n_min) +
                          ", n_max " + std::to_string(n_max));
}

void PromptLookupProposer::propose(const std::vector<int32_t>& ctx, int32_t max, std::vector<int32_t>& out) {
  out.clear();
  match_length_ = 0;
  const int64_t len = static_cast<int64_t>(ctx.size());
  if (max <= 0) return;
  // A linear scan per n: a few thousand comparisons, microseconds against a forward pass.
  for (int64_t n = std::min<int64_t>(n_max_, len - 1); n >= n_min_; --n) {
    const auto suffix = ctx.end() - n;
    // Latest occurrence that ends before the suffix does, so at least one token follows it.
    for (int64_t s = len - n - 1; s >= 0; --s) {
      if (!std::equal(suffix, ctx.end(), ctx.begin() + s)) continue;
      const int64_t from = s + n, to = std::min(len, from + max);
      out.assign(ctx.begin() + from, ctx.begin() + to);
      // The suffix matched n tokens; the occurrence may agree further back.
      int64_t m = n;
      while (m < kMatchLengthCap && s + n - 1 - m >= 0 && ctx[s + n - 1 - m] == ctx[len - 1 - m]) ++m;
      match_length_ = static_cast<int32_t>(m);
      return;
    }
  }
}

}  // namespace edgellm::runtime
