#pragma once
// Picks the next token from logits: penalties, then temperature, top-k, top-p, min-p, then a
// seeded draw. temperature <= 0 is greedy. Same seed and same logits give the same tokens.
#include <cstdint>
#include <random>
#include <vector>

namespace edgellm::sampling {

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
  // Records a token in the penalty history (prompt tokens too, if penalties should see them).
  void accept(int32_t token);
  void reset();
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
  // Top-k, top-p, min-p, temperature and the draw, on logits that already carry penalties.
  int32_t sample_truncated(const float* logits);

  SamplingParams params_;
  int32_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;
  float last_logprob_ = 0.0f;
  float last_entropy_ = 0.0f;
  // Draw with no top-k/top-p/min-p truncation (see sampler.cpp).
  int32_t draw_untruncated(const float* logits, float max_l, double thr);
  std::vector<Cand> scratch_;  // reused candidate buffer (avoids a 262k allocation per token)
};

}  // namespace edgellm::sampling
