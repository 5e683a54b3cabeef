#pragma once
// A smaller model of the same vocabulary proposes drafts (speculative.h), with its own KV cache;
// it runs on the target engine's thread pool. Greedy generations draft greedily; sampled ones draw
// each guess from the draft's distribution under the generation's sampler chain (penalties over
// the same history, top-k/p, min-p, temperature), with its own generator seeded from the
// generation's seed, and hand that distribution to the rejection rule.
#include <memory>
#include <string>

#include "runtime/engine.h"
#include "runtime/proposer.h"

namespace edgellm::runtime {

class DraftModelProposer : public Proposer {
 public:
  // Loads the draft from `path`. InvalidArgument when its vocabulary is not the target's
  // (token for token), since its guesses would be other tokens' ids.
  DraftModelProposer(const Engine& target, const std::string& path, int32_t n_ctx);
  // Drafts with an engine loaded by load_draft (shared: the scheduler gives each slot a
  // proposer of its own, with its own session, over one draft model).
  DraftModelProposer(std::shared_ptr<const Engine> draft, int32_t n_ctx);
  // The draft model at `path`, on the target's thread pool, its vocabulary checked as above.
  static std::shared_ptr<const Engine> load_draft(const Engine& target, const std::string& path);
  void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) override;
  void begin(const sampling::SamplingParams& params) override;
  void prefill(const std::vector<int32_t>& prompt) override;
  const std::vector<sampling::TokenProb>* guess_distribution(size_t i) const override;
  bool samples() const override { return sampler_ != nullptr; }
  const Engine& engine() const { return *draft_; }
  // At most this many context tokens the draft's cache lacks are run per propose() (0: all).
  // Beyond it propose() only catches up and guesses nothing, so a long prompt's draft prefill
  // is spread over the scheduler's passes instead of stalling every other slot in one.
  void set_catch_up_limit(int32_t n_tokens) { catch_up_limit_ = n_tokens; }
  // Whether the last propose() had the whole context in the draft's cache.
  bool caught_up() const { return caught_up_; }
  // The draft guesses among token ids below n only (0: the whole vocabulary). Its output head
  // is then that prefix of its rows: byte-level BPE ids run roughly from frequent to rare, and
  // a guess outside the prefix would only be a miss (the target judges every guess). The
  // 0.5B Qwen's head is 145 of the ~400 MB it reads per token. Default: kDefaultHeadRows.
  void set_head_rows(int32_t n);
  int32_t head_rows() const { return head_rows_; }
  static const int32_t kDefaultHeadRows;
  // A draft stops after a guess the draft model gives less than this probability (its own
  // softmax; when sampling, the drawn token's probability under the chain): the guesses after
  // an uncertain one are rarely all accepted, and each costs a draft pass. That guess is still
  // proposed (verifying one more token costs far less than the draft pass already spent). 0: off.
  void set_min_confidence(float p);
  static const float kDefaultMinConfidence;

 private:
  std::unique_ptr<sampling::Sampler> sampler_;  // null: greedy drafts
  std::vector<std::vector<sampling::TokenProb>> q_;  // per guess of the last propose(), when sampling
  size_t n_q_ = 0;
  std::shared_ptr<const Engine> draft_;
  std::unique_ptr<Session> session_;
  std::vector<float> logits_;
  std::vector<int32_t> part_;  // the context's prefix run by a bounded catch-up
  int32_t catch_up_limit_ = 0;
  int32_t head_rows_ = 0;
  float min_confidence_ = 0.f;
  bool caught_up_ = true;
};

}  // namespace edgellm::runtime
