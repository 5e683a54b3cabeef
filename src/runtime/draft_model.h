#pragma once
// A smaller model of the same vocabulary proposes drafts greedily (speculative.h), with its own
// KV cache; it runs on the target engine's thread pool.
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
  void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) override;
  const Engine& engine() const { return *draft_; }

 private:
  std::unique_ptr<Engine> draft_;
  std::unique_ptr<Session> session_;
  std::vector<float> logits_;
};

}  // namespace edgellm::runtime
