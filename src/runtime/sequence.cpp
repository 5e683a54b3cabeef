#include "runtime/sequence.h"

#include <string>

#include "util/error.h"

namespace edgellm::runtime {

SequenceState::SequenceState(const tokenizer::Tokenizer& tok, int32_t n_vocab, const GenerateParams& params,
                             const std::vector<int32_t>& prompt, TextCallback on_text)
    : tok_(tok),
      params_(params),
      n_vocab_(n_vocab),
      sampler_(params.sampling, n_vocab),
      stops_(params.stop),
      decoder_(tok),
      on_text_(std::move(on_text)) {
  res_.n_prompt = static_cast<int32_t>(prompt.size());
  // Penalties see the prompt too, as in llama.cpp.
  for (int32_t id : prompt) sampler_.accept(id);
}

void SequenceState::emit(const std::string& piece) {
  if (piece.empty()) return;
  res_.text += piece;
  if (params_.on_token) step_text_ += piece;
  if (on_text_ && !on_text_(piece)) cancelled_ = true;
}

void SequenceState::finish(const char* reason) {
  // Whatever the detokenizer and the stop matcher still hold is released unless a stop
  // string ended the text or the client is gone.
  if (!stops_.stopped() && !cancelled_) {
    step_text_.clear();
    emit(stops_.feed(decoder_.flush()).emit);
    if (!stops_.stopped()) emit(stops_.flush());
    if (params_.on_token && !step_text_.empty()) params_.on_token(-1, step_text_);
  }
  res_.finish_reason = cancelled_ ? "cancelled" : reason;
  finished_ = true;
}

void SequenceState::cancel() {
  if (finished_) return;
  cancelled_ = true;
  finish("cancelled");
}

int32_t SequenceState::step(float* logits, int32_t n_cached, int32_t n_ctx, int32_t guess,
                            const std::vector<sampling::TokenProb>* q) {
  if (finished_) return -1;
  if (params_.max_tokens == 0) {  // echo-only completions: the prompt, nothing generated
    finish("length");
    return -1;
  }
  // Kept before the mask and the sampler modify the logits.
  if (params_.logprobs >= 0) raw_.assign(logits, logits + n_vocab_);
  if (params_.constraint) params_.constraint->mask(logits);
  const int32_t id = guess >= 0 ? sampler_.verify(logits, guess, q) : sampler_.sample(logits);
  if (params_.logprobs >= 0) {
    res_.logprobs.push_back(sampling::position_logprobs(raw_.data(), n_vocab_, id, params_.logprobs));
    if (tok_.is_end_of_generation(id) && !params_.ignore_eos) res_.logprobs.pop_back();  // not part of the text
  }
  return after_choice(id, n_cached, n_ctx, sampler_.last_logprob(), sampler_.last_entropy());
}

int32_t SequenceState::force(int32_t id, int32_t n_cached, int32_t n_ctx) {
  if (finished_) return -1;
  if (id < 0 || id >= n_vocab_) throw InvalidArgument("token id " + std::to_string(id) + " outside the vocabulary");
  if (params_.max_tokens == 0) {
    finish("length");
    return -1;
  }
  return after_choice(id, n_cached, n_ctx, 0.0f, 0.0f);
}

int32_t SequenceState::after_choice(int32_t id, int32_t n_cached, int32_t n_ctx, float logprob, float entropy) {
  sampler_.accept(id);
  if (params_.constraint) params_.constraint->accept(id);
  if (tok_.is_end_of_generation(id) && !params_.ignore_eos) {
    finish("stop");
    return -1;
  }
  ++res_.n_generated;
  res_.tokens.push_back(id);
  res_.token_logprobs.push_back(logprob);
  res_.token_entropies.push_back(entropy);
  if (params_.on_logprobs && !res_.logprobs.empty() && res_.logprobs.size() == res_.tokens.size())
    params_.on_logprobs(res_.logprobs.back());
  const auto r = stops_.feed(decoder_.push(id));
  step_text_.clear();
  emit(r.emit);
  if (params_.on_token && !params_.on_token(id, step_text_)) cancelled_ = true;
  if (r.stopped) {
    finish("stop");
    return -1;
  }
  if (cancelled_) {
    finish("cancelled");
    return -1;
  }
  if ((params_.max_tokens >= 0 && res_.n_generated >= params_.max_tokens) || n_cached >= n_ctx) {
    finish("length");
    return -1;
  }
  return id;
}

}  // namespace edgellm::runtime
