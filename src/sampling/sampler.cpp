// Sampler: llama.cpp-compatible chain (penalties -> greedy | top-k -> top-p -> min-p -> temp ->
// seeded draw). The draw builds its uniform double from raw mt19937_64 output, so the same seed
// yields the same tokens on every platform and standard library.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::sampling {
namespace {

using Cand = Sampler::Cand;

// Strict total order: higher logit first, lower id breaks ties (deterministic partial sorts).
// A function object (not a function pointer) so the sorts inline it.
struct Better {
  bool operator()(const Cand& a, const Cand& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};
constexpr Better better{};

// Uniform double in [0, 1) from the top 53 bits of one 64-bit draw.
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  if (n_vocab <= 0) throw InvalidArgument("sampler: n_vocab must be positive, got " + std::to_string(n_vocab));
  if (std::isnan(params.temperature) || std::isnan(params.top_p) || std::isnan(params.min_p) ||
      std::isnan(params.repeat_penalty) || std::isnan(params.presence_penalty) ||
      std::isnan(params.frequency_penalty))
    throw InvalidArgument("sampler: sampling parameters must not be NaN");
  if (params.repeat_penalty <= 0.0f)
    throw InvalidArgument("sampler: repeat_penalty must be > 0 (1 disables it), got " +
                          std::to_string(params.repeat_penalty));
  if (params.repeat_last_n < -1)
    throw InvalidArgument("sampler: repeat_last_n must be >= -1 (-1: whole history, 0: off)");
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_)
    throw InvalidArgument("sampler: accepted token id " + std::to_string(token) +
                          " outside vocabulary of " + std::to_string(n_vocab_));
  history_.push_back(token);
}

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
  last_logprob_ = 0.0f;
  last_entropy_ = 0.0f;
}

int32_t Sampler::sample(float* logits) { return sample_impl(logits, -1, nullptr, nullptr); }

int32_t Sampler::verify(float* logits, int32_t guess, const std::vector<TokenProb>* q) {
  if (guess < 0 || guess >= n_vocab_)
    throw InvalidArgument("sampler: guessed token id " + std::to_string(guess) + " outside vocabulary of " +
                          std::to_string(n_vocab_));
  return sample_impl(logits, guess, q, nullptr);
}

void Sampler::distribution(float* logits, std::vector<TokenProb>& out) { sample_impl(logits, -1, nullptr, &out); }

int32_t Sampler::draw(const std::vector<TokenProb>& dist) {
  if (dist.empty()) throw InvalidArgument("sampler: cannot draw from an empty distribution");
  double total = 0.0;
  for (const auto& t : dist) total += t.p;
  const double r = uniform01(rng_) * total;
  double cum = 0.0;
  for (const auto& t : dist) {
    cum += t.p;
    if (r < cum) return t.id;
  }
  return dist.back().id;  // rounding left r at the very end
}

int32_t Sampler::reject_or_accept(int32_t guess, const std::vector<TokenProb>& q) {
  if (q_dense_.empty()) q_dense_.assign(n_vocab_, 0.0);
  for (const auto& t : q) {
    if (t.id < 0 || t.id >= n_vocab_ || !(t.p >= 0.0)) {
      for (const auto& u : q)
        if (u.id >= 0 && u.id < n_vocab_) q_dense_[u.id] = 0.0;
      throw InvalidArgument("sampler: draft distribution has token id " + std::to_string(t.id) +
                            " or probability out of range");
    }
    q_dense_[t.id] += t.p;
  }
  double px = 0.0;
  for (const auto& t : p_)
    if (t.id == guess) px = t.p;
  const double qx = q_dense_[guess];
  // Accept with probability min(1, p/q): u < p/q without dividing (q = 0 with p > 0 accepts).
  int32_t chosen = -1;
  if (uniform01(rng_) * qx < px) {
    chosen = guess;
  } else {
    // Rejected: draw from the residual max(0, p - q), renormalised. It is zero at the guess
    // (a rejection needs p(guess) < q(guess)), so the draw is another token.
    double total = 0.0;
    for (const auto& t : p_) total += std::max(0.0, t.p - q_dense_[t.id]);
    if (total > 0.0) {
      const double r = uniform01(rng_) * total;
      double cum = 0.0;
      for (const auto& t : p_) {
        const double w = std::max(0.0, t.p - q_dense_[t.id]);
        cum += w;
        if (w > 0.0 && r < cum) { chosen = t.id; break; }
      }
      if (chosen < 0)  // rounding left r at the very end: the last token with residual mass
        for (auto it = p_.rbegin(); it != p_.rend() && chosen < 0; ++it)
          if (it->p - q_dense_[it->id] > 0.0) chosen = it->id;
    } else {
      chosen = draw(p_);  // p equals q up to rounding yet the guess was rejected: p itself
    }
  }
  for (const auto& t : q) q_dense_[t.id] = 0.0;
  return chosen;
}

int32_t Sampler::sample_impl(float* logits, int32_t guess, const std::vector<TokenProb>* q,
                             std::vector<TokenProb>* dist) {
  if (logits == nullptr) throw InvalidArgument("sampler: logits pointer is null");
  const int32_t n = n_vocab_;

  // Raw distribution statistics (before any modification); also validates the input. Vector
  // kernels: over a 49k-262k vocabulary these two passes were ~15% of a busy server's CPU.
  int64_t bad = -1;
  const float max_raw = ops::max_checked(logits, n, &bad);
  if (bad >= 0)
    throw Error("sampler: logit " + std::to_string(bad) + " is " + (std::isnan(logits[bad]) ? "NaN" : "+inf") +
                " (model produced invalid values)");
  if (max_raw == -std::numeric_limits<float>::infinity())
    throw Error("sampler: every logit is -inf, no token can be chosen");
  double sum = 0.0, sum_px = 0.0;  // -inf logits are below the floor: they add nothing
  ops::exp_sums(logits, n, max_raw, 1.0, std::numeric_limits<float>::lowest(), &sum, &sum_px);
  const double log_z = std::log(sum);  // log-normaliser relative to max_raw
  const float entropy = static_cast<float>(log_z - sum_px / sum);

  // Penalties over the last repeat_last_n accepted tokens. Raw values of touched logits are kept
  // so the chosen token's raw log-probability can still be reported.
  std::vector<std::pair<int32_t, float>> touched;
  const bool penalise = params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                        params_.frequency_penalty != 0.0f;
  if (penalise && params_.repeat_last_n != 0 && !history_.empty()) {
    const size_t window = params_.repeat_last_n < 0
                              ? history_.size()
                              : std::min(history_.size(), static_cast<size_t>(params_.repeat_last_n));
    std::unordered_map<int32_t, int32_t> counts;
    for (size_t i = history_.size() - window; i < history_.size(); ++i) ++counts[history_[i]];
    touched.reserve(counts.size());
    for (const auto& [tok, cnt] : counts) {
      float& x = logits[tok];
      touched.emplace_back(tok, x);
      if (x <= 0.0f) x *= params_.repeat_penalty; else x /= params_.repeat_penalty;
      x -= static_cast<float>(cnt) * params_.frequency_penalty + params_.presence_penalty;
    }
  }
  auto raw_logit = [&](int32_t id) {
    for (const auto& [tok, raw] : touched)
      if (tok == id) return raw;
    return logits[id];
  };

  int32_t chosen = -1;
  if (params_.temperature <= 0.0f) {
    // Greedy: first maximum, i.e. lowest id among ties.
    float best = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n; ++i)
      if (logits[i] > best) { best = logits[i]; chosen = i; }
    if (chosen < 0) chosen = 0;  // every logit penalised to -inf: unreachable with finite penalties
    if (dist) {
      dist->assign(1, TokenProb{chosen, 1.0});
      return -1;
    }
  } else if (dist) {
    sample_truncated(logits, dist);
    return -1;
  } else if (guess < 0 || q == nullptr) {
    chosen = sample_truncated(logits);  // a point-mass guess: the plain draw is the rule (header)
  } else {
    sample_truncated(logits, &p_);
    chosen = reject_or_accept(guess, *q);
  }
  last_entropy_ = entropy;
  last_logprob_ = static_cast<float>(static_cast<double>(raw_logit(chosen)) - max_raw - log_z);
  return chosen;
}

int32_t Sampler::sample_truncated(const float* logits, std::vector<TokenProb>* dist) {
  const int32_t n = n_vocab_;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::vector<Cand>& c = scratch_;
  c.clear();
  size_t len = 0;
  float max_l = kNegInf;
  double z = 0.0;  // normaliser (relative to max_l) of the set top-p works on
  if (params_.top_k > 0) {
    // Top-k by a bounded heap in one pass: most logits are rejected by a single comparison,
    // which beats copying the whole vocabulary and selecting.
    const size_t k = static_cast<size_t>(params_.top_k);
    for (int32_t i = 0; i < n; ++i) {
      if (logits[i] == kNegInf) continue;
      const Cand x{logits[i], i};
      if (c.size() < k) {
        c.push_back(x);
        if (c.size() == k) std::make_heap(c.begin(), c.end(), better);  // front: worst kept
      } else if (better(x, c.front())) {
        std::pop_heap(c.begin(), c.end(), better);
        c.back() = x;
        std::push_heap(c.begin(), c.end(), better);
      }
    }
    if (c.empty()) throw Error("sampler: every logit is -inf after penalties");
    len = c.size();
    max_l = std::min_element(c.begin(), c.end(), better)->logit;  // best first
    for (size_t i = 0; i < len; ++i) z += std::exp(c[i].logit - max_l);
  } else {
    int64_t bad = -1;
    max_l = ops::max_checked(logits, n, &bad);  // penalties keep logits finite or -inf
    if (max_l == kNegInf) throw Error("sampler: every logit is -inf after penalties");
    const bool top_p_on = params_.top_p < 1.0f && params_.top_p > 0.0f;
    size_t n_finite = 0;
    if (top_p_on) {  // the nucleus needs the normaliser and the count; nothing else below does
      for (int32_t i = 0; i < n; ++i) n_finite += logits[i] != kNegInf;
      ops::exp_sums(logits, n, max_l, 1.0, std::numeric_limits<float>::lowest(), &z, nullptr);
    }
    // Tokens min-p or top-p will certainly drop never enter the candidate array. For top-p:
    // tokens each below (1 - top_p) / n_finite of the mass together hold less than 1 - top_p,
    // so the nucleus is complete before reaching any of them. Nor do tokens whose weight after
    // temperature is below e^-40 of the best one's: all of them together have a chance under
    // 1e-12 even with a 262k vocabulary, and leaving them out spares the draw a pass of exp()
    // and a selection over the whole vocabulary per token.
    double thr = static_cast<double>(max_l) - 40.0 * static_cast<double>(params_.temperature);
    if (params_.min_p > 0.0f)
      thr = std::max(thr, static_cast<double>(max_l) + std::log(std::min(1.0, static_cast<double>(params_.min_p))));
    if (top_p_on) {
      const double tail = (1.0 - params_.top_p) * z / static_cast<double>(n_finite) * (1.0 - 1e-6);
      thr = std::max(thr, static_cast<double>(max_l) + std::log(tail));
    }
    if (!top_p_on && params_.min_p <= 0.0f && dist == nullptr) {
      // No truncation (OpenAI's defaults): the draw's normaliser is a vector pass over the
      // logits, and only tokens within e^-12 of the best weight enter the array at first; the
      // rest (all of them ranked after those) join only if the walk gets that far.
      return draw_untruncated(logits, max_l, thr);
    }
    for (int32_t i = 0; i < n; ++i)
      if (logits[i] != kNegInf && static_cast<double>(logits[i]) >= thr) c.push_back({logits[i], i});
    len = c.size();
  }

  // Min-p keeps logits >= max + log(min_p) (p >= min_p * p_max); it does not depend on the
  // renormalisation top-p performs, so it can be applied as a partition up front. Top-p's
  // normaliser, however, is over the whole top-k set, so compute it first.
  size_t keep = len;
  if (params_.min_p > 0.0f) {
    const double thr = static_cast<double>(max_l) + std::log(std::min(1.0, static_cast<double>(params_.min_p)));
    auto mid = std::partition(c.begin(), c.begin() + len,
                              [&](const Cand& a) { return static_cast<double>(a.logit) >= thr; });
    keep = std::max<size_t>(1, static_cast<size_t>(mid - c.begin()));
  }

  // Top-p: smallest sorted prefix whose cumulative probability reaches top_p. Sort lazily in
  // growing chunks so a huge vocabulary with top-k off rarely needs a full sort.
  size_t sorted = 0;
  auto ensure_sorted = [&](size_t upto) {
    upto = std::min(upto, keep);
    if (upto <= sorted) return;
    // Select the next chunk in O(remaining), then sort only the chunk.
    if (upto < keep) std::nth_element(c.begin() + sorted, c.begin() + upto, c.begin() + keep, better);
    std::sort(c.begin() + sorted, c.begin() + upto, better);
    sorted = upto;
  };
  if (params_.top_p < 1.0f) {
    const double target = static_cast<double>(params_.top_p) * z;
    double cum = 0.0;
    size_t i = 0, chunk = 64;
    size_t cut = keep;
    bool found = false;
    while (!found && i < keep) {
      ensure_sorted(i + chunk);
      for (; i < sorted; ++i) {
        cum += std::exp(c[i].logit - max_l);  // same float exp as z
        if (cum >= target) { cut = i + 1; found = true; break; }
      }
      chunk *= 4;
    }
    keep = std::max<size_t>(1, std::min(keep, cut));
  }
  // Temperature, then the seeded inverse-CDF draw over the kept candidates in canonical order.
  // The normaliser does not depend on order, so only the prefix the draw reaches is sorted:
  // with top-k and top-p off that is a few hundred of the vocabulary's entries, not all of them
  // (a full sort of 49k candidates per token was a third of the server's CPU time).
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  auto weight = [&](const Cand& a) { return std::exp((static_cast<double>(a.logit) - max_l) * inv_t); };
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += weight(c[i]);
  if (dist) {  // the kept candidates' probabilities, in a deterministic (not canonical) order
    dist->resize(keep);
    for (size_t i = 0; i < keep; ++i) (*dist)[i] = TokenProb{c[i].id, weight(c[i]) / total};
    return -1;
  }
  const double r = uniform01(rng_) * total;
  double cum = 0.0;
  size_t i = 0, chunk = 64;
  while (i < keep) {
    ensure_sorted(i + chunk);
    for (; i < sorted; ++i) {
      cum += weight(c[i]);
      if (r < cum) return c[i].id;
    }
    chunk *= 4;
  }
  return c[keep - 1].id;  // rounding left r at the very end: the last in canonical order
}

}  // namespace edgellm::sampling

namespace edgellm::sampling {

int32_t Sampler::draw_untruncated(const float* logits, float max_l, double thr) {
  const int32_t n = n_vocab_;
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  // The same candidates, double weights and canonical order as sample_truncated's general path;
  // only the normaliser's summation order differs (vector lanes), by double rounding.
  // The smallest float >= thr: candidates are the logits at or above it.
  float stage_floor = static_cast<float>(thr);
  if (static_cast<double>(stage_floor) < thr) stage_floor = std::nextafter(stage_floor, std::numeric_limits<float>::infinity());
  const float first = std::max(stage_floor, static_cast<float>(max_l - 12.0 * params_.temperature));
  double total = 0.0;
  ops::exp_sums(logits, n, max_l, inv_t, stage_floor, &total, nullptr);
  std::vector<Cand>& c = scratch_;
  c.clear();
  for (int32_t i = 0; i < n; ++i)
    if (logits[i] >= first) c.push_back({logits[i], i});
  const double r = uniform01(rng_) * total;
  double cum = 0.0;
  size_t sorted = 0, i = 0, chunk = 64;
  bool rest_added = first <= stage_floor;
  for (;;) {
    const size_t keep = c.size();
    while (i < keep) {
      const size_t upto = std::min(keep, i + chunk);
      if (upto < keep) std::nth_element(c.begin() + sorted, c.begin() + upto, c.begin() + keep, better);
      std::sort(c.begin() + sorted, c.begin() + upto, better);
      sorted = upto;
      for (; i < sorted; ++i) {
        cum += std::exp((static_cast<double>(c[i].logit) - max_l) * inv_t);
        if (r < cum) return c[i].id;
      }
      chunk *= 4;
    }
    if (rest_added) break;
    // Every remaining candidate ranks after all of those walked: append them and go on.
    for (int32_t j = 0; j < n; ++j)
      if (logits[j] >= stage_floor && logits[j] < first) c.push_back({logits[j], j});
    rest_added = true;
  }
  return c.back().id;  // rounding left r at the very end: the last in canonical order
}

}  // namespace edgellm::sampling
