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

int32_t PromptLookupProposer::renamed(int32_t t) const {
  for (const auto& [from, to] : renames_)
    if (from == t) return to;
  return t;
}

void PromptLookupProposer::begin(const sampling::SamplingParams&) {
  renames_.clear();
  refused_.clear();
  last_n_ = 0;
}

void PromptLookupProposer::check_renames(const std::vector<int32_t>& ctx) {
  // The last guesses against what the target wrote at their positions: a renamed guess whose
  // source token the target kept after all ends that rename (a passage that is not renamed).
  for (size_t i = 0; i < last_n_ && last_len_ + i < ctx.size(); ++i) {
    const int32_t source = ctx[last_from_ + i], wrote = ctx[last_len_ + i];
    if (renamed(source) == wrote) continue;
    if (wrote == source) {
      std::erase_if(renames_, [&](const auto& r) { return r.first == source; });
      refused_.push_back(source);  // the earlier substitution stays in view: never learnt again
    }
    break;
  }
  last_n_ = 0;
}

void PromptLookupProposer::propose(const std::vector<int32_t>& ctx, int32_t max, std::vector<int32_t>& out) {
  out.clear();
  match_length_ = 0;
  const int64_t len = static_cast<int64_t>(ctx.size());
  if (last_n_ > 0 && static_cast<size_t>(len) > last_len_) check_renames(ctx);
  last_n_ = 0;
  if (max <= 0 || len < 2) return;
  // Every earlier position, followed back while it agrees with the context's end: the one
  // agreeing longest (up to n_max tokens; then the latest) is most likely the passage being
  // copied, including one the answer itself wrote. An edit of the input (a rename, a changed
  // word) substitutes a token here and there, after which no exact match reaches back past it:
  // one substituted token is therefore allowed when the agreement around it is long, the
  // guesses continuing after the source's replaced token. A substitution confirmed by the
  // agreement after it too is remembered (renames_): later copies of that token are guessed
  // renamed, and agree renamed. About len * (matched length) comparisons: microseconds against
  // a forward pass.
  auto agrees = [&](int64_t a, int64_t b) {
    return renamed(ctx[static_cast<size_t>(a)]) == ctx[static_cast<size_t>(b)];
  };
  int64_t best_s = -1, best_n = 0, best_m = 0, best_exact = 0, best_after = 0;
  for (int64_t s = len - 2; s >= 0; --s) {
    // Only a position agreeing at the last token, or at the one before (a substituted last
    // token), can match at all: the rest are skipped with one or two comparisons.
    if (!agrees(s, len - 1) && (s == 0 || !agrees(s - 1, len - 2))) continue;
    int64_t exact = 0;  // agreement before the first mismatch
    while (exact < kMatchLengthCap && s - exact >= 0 && agrees(s - exact, len - 1 - exact)) ++exact;
    int64_t n = std::min<int64_t>(exact, n_max_), m = exact, after = 0;
    if (exact < kMatchLengthCap && s - exact - 1 >= 0) {  // past one substituted token
      const int64_t j0 = exact + 1;
      while (j0 + after < kMatchLengthCap && s - j0 - after >= 0 && agrees(s - j0 - after, len - 1 - j0 - after))
        ++after;
      const int64_t agree = exact + after;
      // The substitution is a guess too: it counts only against a clearly shorter exact match.
      if (after >= kSubstitutionMinRun && agree - kSubstitutionPenalty > n)
        n = std::min<int64_t>(agree - kSubstitutionPenalty, n_max_), m = agree - kSubstitutionPenalty;
      else
        after = 0;
    }
    if (n > best_n) best_s = s, best_n = n, best_m = m, best_exact = exact, best_after = after;  // ties: the later
    if (best_n >= n_max_) break;
  }
  if (best_n < n_min_) return;
  if (best_after > 0 && best_exact >= kRenameConfirmRun) {
    const int32_t from = ctx[static_cast<size_t>(best_s - best_exact)];
    const int32_t to = ctx[static_cast<size_t>(len - 1 - best_exact)];
    if (renamed(from) != to && std::find(refused_.begin(), refused_.end(), from) == refused_.end()) {
      std::erase_if(renames_, [&](const auto& r) { return r.first == from; });
      if (renames_.size() >= kMaxRenames) renames_.erase(renames_.begin());
      renames_.emplace_back(from, to);
    }
  }
  const int64_t from = best_s + 1, to = std::min(len, from + max);
  for (int64_t i = from; i < to; ++i) out.push_back(renamed(ctx[static_cast<size_t>(i)]));
  match_length_ = static_cast<int32_t>(best_m);
  last_len_ = static_cast<size_t>(len);
  last_from_ = static_cast<size_t>(from);
  last_n_ = out.size();
}

}  // namespace edgellm::runtime
