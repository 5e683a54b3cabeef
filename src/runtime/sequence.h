#pragma once
// The decode-side state of one generation: sampler, constraint, stop strings, streaming
// detokenizer and the result being built. It is fed the logits of the last token run and
// answers with the next token to run (or that the sequence is finished). The same object
// drives a single Session and every sequence of the batch scheduler, so there is one
// generation loop.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/logprobs.h"
#include "sampling/sampler.h"
#include "sampling/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::runtime {

// Restricts which tokens may come next (JSON schema, grammar).
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets the logits of forbidden tokens to -infinity.
  virtual void mask(float* logits) = 0;
  virtual void accept(int32_t token) = 0;
};

// Receives each generated token with the text it completes (possibly empty: part of a
// character, or held back by a stop string), and id -1 with text still held at the end;
// return false to cancel.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

struct GenerateParams {
  sampling::SamplingParams sampling;
  int32_t max_tokens = -1;        // < 0: until end of generation or the context is full
  std::vector<std::string> stop;  // generation ends before any of these strings
  bool ignore_eos = false;
  std::shared_ptr<TokenConstraint> constraint;  // optional
  TokenCallback on_token;                       // optional (the C API's per-token callback)
  // >= 0: GenerateResult::logprobs gets each generated token's log-probability under the raw
  // logits (before constraint masks and penalties) and this many most probable alternatives.
  int32_t logprobs = -1;
  // With logprobs >= 0: each token's entry as it is added (before its text is emitted).
  std::function<void(const sampling::PositionLogprobs&)> on_logprobs;
};

struct GenerateResult {
  std::string text;
  std::string finish_reason;       // "stop" (end token or stop string), "length", "cancelled"
  int32_t n_prompt = 0;            // prompt tokens given
  int32_t n_prompt_evaluated = 0;  // prompt tokens actually run (the rest came from the cache)
  int32_t n_generated = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  int32_t n_decode_passes = 0;     // forward passes after the prompt
  int32_t n_drafted = 0;           // speculative guesses verified (speculative.h)
  int32_t n_draft_accepted = 0;    // ... and accepted
  std::vector<int32_t> tokens;        // generated ids (without the end-of-generation token)
  std::vector<float> token_logprobs;  // per generated token, under the raw distribution
  std::vector<float> token_entropies;
  std::vector<sampling::PositionLogprobs> logprobs;  // per generated token when params.logprobs >= 0
};

// Receives each piece of newly complete text; return false to cancel generation.
using TextCallback = std::function<bool(const std::string& piece)>;

class SequenceState {
 public:
  SequenceState(const tokenizer::Tokenizer& tok, int32_t n_vocab, const GenerateParams& params,
                const std::vector<int32_t>& prompt, TextCallback on_text);

  // logits: [n_vocab] for the last token run (modified). n_cached: tokens now in the cache;
  // n_ctx: its capacity. Returns the token to run next, or -1 when the sequence is finished.
  // With a speculative `guess` (>= 0) for this position, drawn from `q` (null: a deterministic
  // guess), the token is chosen by Sampler::verify, distributed as without a guess.
  int32_t step(float* logits, int32_t n_cached, int32_t n_ctx, int32_t guess = -1,
               const std::vector<sampling::TokenProb>* q = nullptr);
  // A token chosen elsewhere (a remote verifier's greedy token): everything step() does after
  // its choice (penalty history, constraint, stop strings, limits). Its log-probability is
  // unknown here and recorded as 0.
  int32_t force(int32_t id, int32_t n_cached, int32_t n_ctx);
  // The answer ends here as if an end-of-generation token came (finish_reason "stop").
  void end_of_generation() {
    if (!finished_) finish("stop");
  }
  // Stops the sequence from outside (client gone); finish_reason "cancelled".
  void cancel();

  bool finished() const { return finished_; }
  GenerateResult& result() { return res_; }

 private:
  void emit(const std::string& piece);
  void finish(const char* reason);
  int32_t after_choice(int32_t id, int32_t n_cached, int32_t n_ctx, float logprob, float entropy);

  const tokenizer::Tokenizer& tok_;
  GenerateParams params_;
  int32_t n_vocab_;
  sampling::Sampler sampler_;
  sampling::StopStringMatcher stops_;
  tokenizer::StreamDecoder decoder_;
  TextCallback on_text_;
  GenerateResult res_;
  bool finished_ = false;
  bool cancelled_ = false;
  std::string step_text_;  // text emitted during the current step (for on_token)
  std::vector<float> raw_;  // the unmodified logits of this step (params.logprobs >= 0)
};

}  // namespace edgellm::runtime
