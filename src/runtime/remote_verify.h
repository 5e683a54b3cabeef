#pragma once
// Device drafts, a remote target verifies (issue 12): the device model drafts k tokens greedily,
// the target (a bigger model behind an OpenAI-compatible server) scores context + draft in one
// request, and the longest prefix it agrees with is kept plus its own token after it. Every
// token of the answer is the target's greedy choice, so the answer is the target's own greedy
// answer while the target runs one (batched) pass per round instead of one per token.
// When the verifier fails (malformed or short answer, disconnect, ...) the answer completes on
// the device alone and the stats say why.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "util/error.h"

namespace edgellm::runtime {

class VerifierError : public Error {
 public:
  using Error::Error;
};

class RemoteVerifier {
 public:
  // The verifier's answer ended at this position (its greedy choice is an end of generation).
  static constexpr int32_t kEnd = -2;
  virtual ~RemoteVerifier() = default;
  // tokens = context + draft; returns the target's greedy token at each position
  // n_context .. tokens.size() (draft.size() + 1 of them; kEnd for an end of the answer).
  // Throws VerifierError when it cannot answer.
  virtual std::vector<int32_t> verify(const std::vector<int32_t>& tokens, size_t n_context) = 0;
};

struct RemoteVerifyStats {
  int32_t rounds = 0;            // verifier requests answered (each one target pass)
  int32_t drafted = 0;           // draft tokens sent
  int32_t accepted = 0;          // ... the target agreed with
  int32_t verified_tokens = 0;   // answer tokens chosen by the target
  int32_t device_tokens = 0;     // answer tokens the device chose alone after a failure
  std::string failure;           // why the verifier was given up (empty: it never failed)
};

// Greedy only (InvalidArgument for temperature > 0: a verifier scores greedy choices).
// `session` is the device model's; draft_max tokens per round (>= 1).
GenerateResult generate_remote_verified(Session& session, const std::vector<int32_t>& prompt,
                                        const GenerateParams& params, RemoteVerifier& verifier, int32_t draft_max,
                                        RemoteVerifyStats* stats, const TextCallback& on_text = nullptr);

// The device's greedy tokens after `ctx`, at most k (fewer when its answer ends there): how a
// device that is not a Session (the server's batch scheduler) drafts. Exceptions propagate.
using GreedyDraftFn = std::function<std::vector<int32_t>(const std::vector<int32_t>& ctx, int32_t k)>;

// The same loop with the device behind `draft` (`engine` gives the tokenizer and vocabulary,
// `n_ctx` the context the answer must fit). After a verifier failure the device completes the
// answer in drafts of up to 16 tokens. Same answer, token for token, as the Session version.
GenerateResult generate_remote_verified(const Engine& engine, int32_t n_ctx, const GreedyDraftFn& draft,
                                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                                        RemoteVerifier& verifier, int32_t draft_max, RemoteVerifyStats* stats,
                                        const TextCallback& on_text = nullptr);

}  // namespace edgellm::runtime
