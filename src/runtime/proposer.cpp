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
  if (max <= 0 || len < 2) return;
  // Every earlier occurrence of the last token, followed back while it agrees with the
  // context's end: the one agreeing longest (up to n_max tokens; then the latest) is most likely
  // the passage being copied, including one the answer itself wrote. About len * (matched
  // length) comparisons: microseconds against a forward pass.
  const int32_t last = ctx[static_cast<size_t>(len - 1)];
  int64_t best_s = -1, best_n = 0, best_m = 0;
  for (int64_t s = len - 2; s >= 0; --s) {
    if (ctx[static_cast<size_t>(s)] != last) continue;
    int64_t m = 1;
    while (m < kMatchLengthCap && s - m >= 0 && ctx[static_cast<size_t>(s - m)] == ctx[static_cast<size_t>(len - 1 - m)]) ++m;
    const int64_t n = std::min<int64_t>(m, n_max_);
    if (n > best_n) best_s = s, best_n = n, best_m = m;  // ties keep the later occurrence
    if (best_n >= n_max_) break;
  }
  if (best_n < n_min_) return;
  const int64_t from = best_s + 1, to = std::min(len, from + max);
  out.assign(ctx.begin() + from, ctx.begin() + to);
  match_length_ = static_cast<int32_t>(best_m);
}

}  // namespace edgellm::runtime
