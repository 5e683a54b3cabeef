#include "runtime/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "util/error.h"

namespace edgellm::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Weight of each new guess in the acceptance estimate: recent text matters more (a quoted
// passage ends, a fresh one starts) but one miss does not end drafting. A match-length class
// sees fewer and more alike passes, so it remembers longer.
constexpr float kAlpha = 0.15f;
constexpr float kClassAlpha = 0.10f;

}  // namespace

int32_t DraftLength::class_of(int32_t m) {
  if (m <= 0) return 0;
  int32_t c = 1;
  for (int32_t upper = 1; c < kClasses - 1 && m > upper; upper *= 2) ++c;
  return c;  // 1: 1 token, 2: 2, 3: 3-4, 4: 5-8, 5: 9-16, 6: 17+
}

DraftLength::DraftLength(const SpeculativeOptions& opts)
    : max_(opts.draft_max),
      cost_(opts.verify_cost),
      probe_interval_(opts.probe_interval),
      learn_(opts.learn_cost && !opts.costs.known()),
      costs_(opts.costs) {
  if (opts.draft_max < 0) throw InvalidArgument("draft length must be >= 0, got " + std::to_string(opts.draft_max));
  if (!(opts.verify_cost >= 0.f)) throw InvalidArgument("verify cost must be >= 0");
  if (opts.probe_interval < 1)
    throw InvalidArgument("probe interval must be >= 1, got " + std::to_string(opts.probe_interval));
  if (!(opts.costs.guess >= 0.f)) throw InvalidArgument("guess cost must be >= 0");
  const size_t positions = static_cast<size_t>(std::max(1, opts.draft_max));
  for (int32_t c = 0; c < kClasses; ++c) {
    const float m = static_cast<float>(1 << std::max(0, c - 1));  // 1, 2, 4, ..., 32
    classes_[c].accept.assign(positions, c == 0 ? 0.6f : m / (m + 1.f));
    classes_[c].seen.assign(positions, 0);
    classes_[c].rest = opts.probe_interval;
  }
}

float DraftLength::acceptance_at(int32_t position, int32_t match_length) const {
  const Estimate& e = classes_[class_of(match_length)];
  return e.estimate(std::clamp<int32_t>(position, 0, static_cast<int32_t>(e.accept.size()) - 1));
}

float DraftLength::Estimate::estimate(int32_t i) const {
  while (i > 0 && !seen[static_cast<size_t>(i)]) --i;  // never judged: the deepest judged before it
  return accept[static_cast<size_t>(i)];
}

double DraftLength::draft_cost(int32_t k) const {
  if (costs_.known()) return costs_.pass(k + 1) + costs_.guess * k;
  return 1.0 + cost_ * k;
}

int32_t DraftLength::best_length(const Estimate& e) const {
  // A draft of k guesses, the i-th accepted with probability a_i once those before it were,
  // yields 1 + a_1 + a_1 a_2 + ... + a_1...a_k tokens for a pass costing draft_cost(k).
  int32_t best = 0;
  double best_rate = 1.0, yield = 1.0, term = 1.0;
  for (int32_t k = 1; k <= max_; ++k) {
    term *= e.estimate(k - 1);
    yield += term;
    const double rate = yield / draft_cost(k);
    if (rate > best_rate * 1.0001) best = k, best_rate = rate;
  }
  return best;
}

int32_t DraftLength::next(int32_t match_length) {
  last_class_ = class_of(match_length);
  if (learn_ && t1_ == 0) return 0;  // the first pass times a one-token pass
  Estimate& e = classes_[last_class_];
  if (e.resting > 0) {
    if (--e.resting > 0) return 0;
    e.probed = true;
    return std::min<int32_t>(max_, 2);  // probe: short, so a miss costs little
  }
  const int32_t k = best_length(e);
  if (k > 0) {
    e.rest = probe_interval_;
  } else {
    // A probe that did not bring drafting back doubles the rest: on text where guesses keep
    // failing (open chat for a draft model, which also catches up on the tokens it missed),
    // each probe is a loss.
    if (e.probed) e.rest = std::min(2 * e.rest, kMaxRestFactor * probe_interval_);
    e.resting = e.rest;
  }
  e.probed = false;
  return k;
}

void DraftLength::record(int32_t drafted, int32_t accepted) {
  // Each judged position is a Bernoulli trial: positions before `accepted` succeeded, the one at
  // it failed if a guess was rejected; positions after it were not judged.
  const float alpha = last_class_ == 0 ? kAlpha : kClassAlpha;
  Estimate& e = classes_[last_class_];
  const int32_t n = static_cast<int32_t>(e.accept.size());
  // A position judged for the first time starts from what it inherited (acceptance_at).
  auto update = [&](int32_t i, float outcome) {
    const size_t u = static_cast<size_t>(i);
    if (!e.seen[u]) e.accept[u] = e.estimate(i), e.seen[u] = 1;
    e.accept[u] += alpha * (outcome - e.accept[u]);
  };
  for (int32_t i = 0; i < std::min(accepted, n); ++i) update(i, 1.f);
  if (accepted < drafted && accepted < n) update(accepted, 0.f);
}

void DraftLength::record_pass(int32_t n_tokens, double seconds) {
  if (!learn_ || n_tokens < 1 || !(seconds > 0)) return;
  if (n_tokens == 1) {
    t1_ = t1_ == 0 ? seconds : t1_ + kAlpha * (seconds - t1_);
    return;
  }
  if (t1_ == 0) return;
  const double per_token = std::max(0.0, seconds / t1_ - 1.0) / (n_tokens - 1);
  cost_ += kAlpha * (static_cast<float>(std::min(per_token, 4.0)) - cost_);  // one stall must not end drafting
}

void choose_draft(Proposer& proposer, DraftLength& length, int32_t room,
                  const std::function<const std::vector<int32_t>&()>& context, std::vector<int32_t>& draft) {
  draft.clear();
  room = std::min(room, length.max());
  if (room <= 0) return;
  if (proposer.cheap()) {
    proposer.propose(context(), room, draft);
    if (draft.empty()) return;  // nothing to judge: the pass is plain and length is not consulted
    const size_t k = static_cast<size_t>(std::max(0, length.next(proposer.match_length())));
    if (draft.size() > k) draft.resize(k);
    return;
  }
  const int32_t k = std::min(length.next(), room);
  if (k <= 0) return;
  proposer.propose(context(), k, draft);
  if (static_cast<int32_t>(draft.size()) > k) draft.resize(static_cast<size_t>(k));
}

GenerateResult generate_speculative(Session& s, const std::vector<int32_t>& prompt, const GenerateParams& params,
                                    const SpeculativeOptions& opts, const TextCallback& on_text) {
  if (!opts.proposer) throw InvalidArgument("speculative decoding needs a proposer");
  opts.proposer->begin(params.sampling);
  // A sampling draft's guesses consume its generator, so which guesses are drawn must not depend
  // on the machine's speed: a seeded run then keeps the fixed cost (lengths follow acceptance only).
  SpeculativeOptions fixed = opts;
  if (params.sampling.temperature > 0.0f && opts.proposer->samples()) fixed.learn_cost = false;
  DraftLength length(fixed);
  const int32_t n_vocab = s.engine().config().n_vocab;
  std::vector<float> logits(n_vocab);
  auto t0 = Clock::now();
  const int32_t n_evaluated = s.load_prompt(prompt, logits.data());
  opts.proposer->prefill(s.tokens());  // a draft model's prompt is prompt processing too
  const double prefill_seconds = seconds_since(t0);

  SequenceState seq(s.engine().tokenizer(), n_vocab, params, prompt, on_text);
  GenerateResult& res = seq.result();
  t0 = Clock::now();
  std::vector<int32_t> context, draft, batch;
  // A draft model's first guesses after plain passes also run every token it missed: that time
  // is not the cost of a guess, and one such pass (a probe after a rest) made drafting look too
  // dear to resume on text where it pays.
  const bool catches_up = !opts.proposer->cheap();
  bool drafted_last = false;
  try {
    int32_t id = seq.step(logits.data(), static_cast<int32_t>(s.tokens().size()), s.n_ctx());
    while (id >= 0) {
      // `id` is chosen but not yet run; the cache holds `held` tokens.
      const int32_t held = static_cast<int32_t>(s.tokens().size());
      int32_t room = s.n_ctx() - 1 - held;  // every guess needs a position
      if (params.max_tokens >= 0) room = std::min(room, params.max_tokens - res.n_generated - 1);  // past the end: waste
      const auto pass_start = Clock::now();
      choose_draft(*opts.proposer, length, room, [&]() -> const std::vector<int32_t>& {
        context = s.tokens();
        context.push_back(id);
        return context;
      }, draft);
      batch.assign(1, id);
      batch.insert(batch.end(), draft.begin(), draft.end());
      logits.resize(batch.size() * static_cast<size_t>(n_vocab));
      s.extend(batch, logits.data());
      ++res.n_decode_passes;
      if (!(catches_up && !draft.empty() && !drafted_last))
        length.record_pass(static_cast<int32_t>(batch.size()), seconds_since(pass_start));
      drafted_last = !draft.empty();
      // Row i holds the logits after batch[i]: the target's choice there is judged against
      // draft[i]. The sequence state sees each row exactly as plain decoding would.
      size_t i = 0;
      int32_t next = -1;
      for (;; ++i) {
        const bool guessed = i < draft.size();
        next = seq.step(&logits[i * n_vocab], held + 1 + static_cast<int32_t>(i), s.n_ctx(),
                        guessed ? draft[i] : -1, guessed ? opts.proposer->guess_distribution(i) : nullptr);
        if (next < 0 || i == draft.size() || next != draft[i]) break;
      }
      s.truncate(held + 1 + static_cast<int32_t>(i));  // drop the rejected guesses' KV entries
      // Guesses after the end of the sequence were never judged.
      const int32_t judged = next < 0 ? static_cast<int32_t>(i) : static_cast<int32_t>(draft.size());
      length.record(judged, static_cast<int32_t>(i));
      res.n_drafted += judged;
      res.n_draft_accepted += static_cast<int32_t>(i);
      id = next;
    }
  } catch (...) {
    s.reset();  // a failed pass leaves the cache in an unknown state
    throw;
  }
  res.decode_seconds = seconds_since(t0);
  res.prefill_seconds = prefill_seconds;
  res.n_prompt_evaluated = n_evaluated;
  return std::move(res);
}

}  // namespace edgellm::runtime
