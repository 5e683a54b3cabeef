#pragma once
// Picks the next token from logits: penalties, then temperature, top-k, top-p, min-p, then a
// seeded draw. temperature <= 0 is greedy. Same seed and same logits give the same tokens.
#include <cstdint>
#include <random>
#include <vector>

namespace edgellm::sampling {

// One token of a distribution and its probability.
struct TokenProb {
  int32_t id;
  double p;
};

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;          // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off (llama.cpp semantics: divide positive, multiply negative)
  int32_t repeat_last_n = 64;  // window for penalties; -1: whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xED6E11;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t n_vocab);
  // logits: n_vocab values, modified in place. Returns the chosen id.
  int32_t sample(float* logits);
  // Speculative verification (Leviathan et al. / Chen et al. 2023): `guess` was proposed for this
  // position, drawn from `q` (the proposer's distribution here, e.g. a draft model's under the same
  // chain) or, when q is null, chosen deterministically (prompt lookup: a point mass). Returns the
  // guess if accepted (probability min(1, p(guess)/q(guess))), else a draw from norm(max(0, p - q)),
  // p being the distribution sample() draws from; either way the result is distributed exactly as
  // sample()'s. For a point mass that rule is "draw from p; the guess is accepted iff the draw equals
  // it", so verify() then is sample() itself (same draws: seeded output equals plain sampling).
  // Greedy (temperature <= 0) returns sample()'s token. Statistics as sample().
  int32_t verify(float* logits, int32_t guess, const std::vector<TokenProb>* q);
  // The distribution sample() draws from (penalties, then top-k/top-p/min-p and temperature; greedy:
  // the chosen token with probability 1), as (id, probability) pairs summing to 1. logits are
  // modified; no draw is made and the statistics are not touched.
  void distribution(float* logits, std::vector<TokenProb>& out);
  // Draws from such a distribution with this sampler's generator (a draft model's own draws).
  int32_t draw(const std::vector<TokenProb>& dist);
  // Records a token in the penalty history (prompt tokens too, if penalties should see them).
  void accept(int32_t token);
  void reset();
  // Empties the penalty history only (the generator goes on).
  void clear_history() { history_.clear(); }
  // Natural-log probability of the last chosen token under the unmodified distribution
  // (softmax of the raw logits), for confidence signals.
  float last_logprob() const { return last_logprob_; }
  // Entropy (nats) of that distribution.
  float last_entropy() const { return last_entropy_; }
  const SamplingParams& params() const { return params_; }
  const std::vector<int32_t>& history() const { return history_; }
  int32_t n_vocab() const { return n_vocab_; }

  struct Cand {  // one surviving candidate during truncation
    float logit;
    int32_t id;
  };

 private:
  // Validation, statistics and penalties, then the choice: a plain draw (guess < 0), the
  // speculative rule, or (dist != null) only the distribution.
  int32_t sample_impl(float* logits, int32_t guess, const std::vector<TokenProb>* q, std::vector<TokenProb>* dist);
  // Top-k, top-p, min-p, temperature and the draw, on logits that already carry penalties. With
  // `dist`, fills it with the kept candidates' probabilities instead of drawing (returns -1).
  int32_t sample_truncated(const float* logits, std::vector<TokenProb>* dist = nullptr);
  // The rejection step on the target's distribution p_ (filled by the caller).
  int32_t reject_or_accept(int32_t guess, const std::vector<TokenProb>& q);

  SamplingParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  float last_logprob_ = 0.0f;
  float last_entropy_ = 0.0f;
  // Draw with no top-k/top-p/min-p truncation (see sampler.cpp).
  int32_t draw_untruncated(const float* logits, float max_l, double thr);
  std::vector<Cand> scratch_;  // reused candidate buffer (avoids a 262k allocation per token)
  std::vector<TokenProb> p_;   // verify(): the target's distribution
  std::vector<double> q_dense_;  // verify(): q by id (zero outside q's support between calls)
};

}  // namespace edgellm::sampling
