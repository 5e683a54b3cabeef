#include "sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::sampling {

PositionLogprobs position_logprobs(const float* logits, int32_t n_vocab, int32_t token, int32_t top_n) {
  if (logits == nullptr || n_vocab <= 0) throw InvalidArgument("logprobs: no logits");
  if (token >= n_vocab) throw InvalidArgument("logprobs: token id " + std::to_string(token) + " outside the vocabulary");
  int64_t bad = -1;
  const float max_l = ops::max_checked(logits, n_vocab, &bad);
  if (bad >= 0) throw Error("logprobs: logit " + std::to_string(bad) + " is NaN or +inf");
  PositionLogprobs out;
  out.id = token;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (max_l == kNegInf) throw Error("logprobs: every logit is -inf");
  double sum = 0.0;
  ops::exp_sums(logits, n_vocab, max_l, 1.0, std::numeric_limits<float>::lowest(), &sum, nullptr);
  const double shift = static_cast<double>(max_l) + std::log(sum);
  auto lp = [&](int32_t id) { return static_cast<float>(static_cast<double>(logits[id]) - shift); };
  if (token >= 0) out.logprob = lp(token);
  const int32_t k = std::clamp(top_n, 0, std::min(n_vocab, kMaxTopLogprobs));
  if (k == 0) return out;
  // Bounded selection: most logits fail one comparison against the worst kept.
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::vector<int32_t> best;
  best.reserve(static_cast<size_t>(k) + 1);
  for (int32_t i = 0; i < n_vocab; ++i) {
    if (static_cast<int32_t>(best.size()) == k && !better(i, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), i, better), i);
    if (static_cast<int32_t>(best.size()) > k) best.pop_back();
  }
  out.top.reserve(best.size());
  for (int32_t id : best) out.top.push_back({id, lp(id)});
  return out;
}

}  // namespace edgellm::sampling
