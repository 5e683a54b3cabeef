#pragma once
// Log-probabilities for OpenAI's `logprobs` / `top_logprobs` / `echo`: the softmax of the raw
// logits of one position (no penalties, temperature or truncation: what vLLM and OpenAI report).
#include <cstdint>
#include <vector>

namespace edgellm::sampling {

// OpenAI allows up to 20 alternatives per position (chat top_logprobs; vLLM the same for
// completions' logprobs).
inline constexpr int32_t kMaxTopLogprobs = 20;

struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0.0f;
};

// One position: the log-probability of the token found there and the `top` most probable
// tokens, most probable first (ties: lower id first).
struct PositionLogprobs {
  int32_t id = -1;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
};

// logits: n_vocab raw values (not modified). -inf logits have log-probability -inf; NaN or +inf
// throw Error. `token` (-1: none) is the token whose log-probability goes into `id/logprob`.
PositionLogprobs position_logprobs(const float* logits, int32_t n_vocab, int32_t token, int32_t top_n);

}  // namespace edgellm::sampling
