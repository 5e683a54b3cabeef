#include "runtime/draft_model.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace edgellm::runtime {
namespace {

void check_same_vocabulary(const Engine& target, const Engine& draft, const std::string& path) {
  const auto& a = target.tokenizer();
  const auto& b = draft.tokenizer();
  if (a.n_vocab() != b.n_vocab())
    throw InvalidArgument("draft model " + path + " has a vocabulary of " + std::to_string(b.n_vocab()) +
                          " tokens but the target's has " + std::to_string(a.n_vocab()) +
                          "; a draft must share the target's tokenizer (e.g. a smaller model of the same family)");
  for (int32_t id = 0; id < a.n_vocab(); ++id)
    if (a.token_text(id) != b.token_text(id))
      throw InvalidArgument("draft model " + path + " has another vocabulary than the target (token " +
                            std::to_string(id) + " is '" + b.token_text(id) + "' there, '" + a.token_text(id) +
                            "' in the target); a draft must share the target's tokenizer");
}

}  // namespace

const int32_t DraftModelProposer::kDefaultHeadRows = 0;
const float DraftModelProposer::kDefaultMinConfidence = 0.0f;

std::shared_ptr<const Engine> DraftModelProposer::load_draft(const Engine& target, const std::string& path) {
  EngineOptions opts;
  opts.share_pool_with = &target;
  std::shared_ptr<const Engine> draft = Engine::load(path, opts);
  check_same_vocabulary(target, *draft, path);
  return draft;
}

DraftModelProposer::DraftModelProposer(const Engine& target, const std::string& path, int32_t n_ctx)
    : DraftModelProposer(load_draft(target, path), n_ctx) {}

DraftModelProposer::DraftModelProposer(std::shared_ptr<const Engine> draft, int32_t n_ctx) : draft_(std::move(draft)) {
  if (!draft_) throw InvalidArgument("draft model proposer: no draft model");
  session_ = std::make_unique<Session>(*draft_, n_ctx);
  logits_.resize(draft_->config().n_vocab);
  set_head_rows(kDefaultHeadRows);
  set_min_confidence(kDefaultMinConfidence);
}

void DraftModelProposer::set_head_rows(int32_t n) {
  if (n < 0) throw InvalidArgument("draft vocabulary must be >= 0 tokens (0: all), got " + std::to_string(n));
  session_->set_head_rows(n);
  head_rows_ = n;
}

void DraftModelProposer::set_min_confidence(float p) {
  if (!(p >= 0.f && p <= 1.f)) throw InvalidArgument("draft minimum confidence must be in [0, 1]");
  min_confidence_ = p;
}

void DraftModelProposer::propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) {
  out.clear();
  // Every draft but the last is run through the draft model, after the context.
  max = std::min<int64_t>(max, static_cast<int64_t>(session_->n_ctx()) - static_cast<int64_t>(context.size()));
  if (max <= 0 || context.empty()) return;
  caught_up_ = true;
  if (catch_up_limit_ > 0) {
    const auto& held = session_->tokens();
    const size_t common = static_cast<size_t>(
        std::mismatch(held.begin(), held.end(), context.begin(), context.end()).first - held.begin());
    if (context.size() - common > static_cast<size_t>(catch_up_limit_)) {
      part_.assign(context.begin(), context.begin() + static_cast<std::ptrdiff_t>(common + catch_up_limit_));
      session_->load_prompt(part_, logits_.data());
      caught_up_ = false;
      return;
    }
  }
  // The cache still holds the last context and drafts: only what changed since is run.
  session_->load_prompt(context, logits_.data());
  n_q_ = 0;
  if (sampler_) {  // penalties see what the target's see: the context, then the guesses
    sampler_->clear_history();
    for (int32_t t : context) sampler_->accept(t);
  }
  // Logits past the head's rows are -inf: the scans stop there.
  const auto end = head_rows_ > 0 && head_rows_ < static_cast<int32_t>(logits_.size()) ? logits_.begin() + head_rows_
                                                                                        : logits_.end();
  for (;;) {
    int32_t t;
    float confidence = 1.f;
    if (sampler_) {
      if (q_.size() <= n_q_) q_.resize(n_q_ + 1);
      sampler_->distribution(logits_.data(), q_[n_q_]);
      t = sampler_->draw(q_[n_q_]);
      if (min_confidence_ > 0)
        for (const auto& tp : q_[n_q_])
          if (tp.id == t) confidence = tp.p;
      ++n_q_;
      sampler_->accept(t);
    } else {
      const auto best = std::max_element(logits_.begin(), end);
      t = static_cast<int32_t>(best - logits_.begin());
      if (min_confidence_ > 0) {
        // Softmax probability of the best, 1 / sum exp(l - max); logits 16 below the best add
        // under 2e-2 over the whole vocabulary, so only the few near it pay for an exp.
        double sum = 0;
        for (auto it = logits_.begin(); it != end; ++it)
          if (const float d = *it - *best; d > -16.f) sum += std::exp(static_cast<double>(d));
        confidence = static_cast<float>(1.0 / sum);
      }
    }
    out.push_back(t);
    if (static_cast<int32_t>(out.size()) >= max || confidence < min_confidence_) return;
    session_->extend({t}, logits_.data());
  }
}

void DraftModelProposer::prefill(const std::vector<int32_t>& prompt) {
  if (prompt.empty() || static_cast<int64_t>(prompt.size()) >= session_->n_ctx()) return;  // propose() copes
  session_->load_prompt(prompt, logits_.data());
}

void DraftModelProposer::begin(const sampling::SamplingParams& params) {
  n_q_ = 0;
  if (params.temperature <= 0.0f) {
    sampler_.reset();
    return;
  }
  sampling::SamplingParams own = params;
  own.seed = params.seed ^ 0x9E3779B97F4A7C15ull;  // its own stream, independent of the target's
  sampler_ = std::make_unique<sampling::Sampler>(own, draft_->config().n_vocab);
}

const std::vector<sampling::TokenProb>* DraftModelProposer::guess_distribution(size_t i) const {
  return sampler_ && i < n_q_ ? &q_[i] : nullptr;
}

}  // namespace edgellm::runtime
