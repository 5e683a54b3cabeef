#pragma once
// The cloud side of "device drafts, cloud verifies" (issue 12): one legacy /v1/completions
// request per round, {"prompt": token ids, "echo": true, "logprobs": 1, "max_tokens": 1,
// "temperature": 0, "return_tokens_as_token_ids": true}, which any OpenAI-compatible engine that
// scores prompts answers (vLLM, `edgellm serve`): the most probable token at every prompt position
// is the cloud's greedy choice there, and the generated token its choice after the last one.
// Token ids are sent, so the cloud must share the device's vocabulary; tokens come back as
// "token_id:N" (vLLM's extension), so no string is mapped back to a token.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hybrid/cloud_client.h"
#include "runtime/remote_verify.h"

namespace edgellm::hybrid {

struct VerifyReply {
  CloudError error = CloudError::None;
  std::string message;          // why it failed (never the request text)
  std::vector<int32_t> greedy;  // positions n_context .. n_prompt; kVerifyEnd: the answer ends there
  double latency_ms = 0;
  int http_status = 0;          // the verifier's HTTP status (0: no answer)
  bool ok() const { return error == CloudError::None; }
};

inline constexpr int32_t kVerifyEnd = -2;

// The greedy tokens in a /v1/completions answer (echo + logprobs) to a prompt of n_prompt ids:
// the best of top_logprobs at positions n_context..n_prompt-1 and the generated token (none
// with finish_reason "stop": the end). MalformedJson for anything else, short logprobs included.
VerifyReply parse_verify_answer(const std::string& body, size_t n_prompt, size_t n_context, int32_t n_vocab);

class CompletionsVerifier {
 public:
  // cfg.base_url ".../v1" ("/completions" is appended); cfg.model is sent when set.
  CompletionsVerifier(CloudConfig cfg, int32_t n_vocab);
  VerifyReply verify(const std::vector<int32_t>& tokens, size_t n_context);
  int64_t requests() const { return requests_; }

 private:
  CloudConfig cfg_;
  int32_t n_vocab_;
  int64_t requests_ = 0;
};

// A CompletionsVerifier behind the runtime's interface (runtime/remote_verify.h): a failed
// request throws runtime::VerifierError; what failed and the time spent stay readable for the
// route record and the circuit breaker. `rtt_ms` is added to each round trip (measurements).
class RuntimeVerifier final : public runtime::RemoteVerifier {
 public:
  RuntimeVerifier(CloudConfig cfg, int32_t n_vocab, int32_t rtt_ms = 0);
  std::vector<int32_t> verify(const std::vector<int32_t>& tokens, size_t n_context) override;
  const VerifyReply& last() const { return last_; }  // the last answer (its error: the failure)
  double cloud_ms() const { return cloud_ms_; }       // all rounds
  int64_t requests() const { return v_.requests(); }
  // The failure says the endpoint is unhealthy (timeout, connect, dropped, malformed, 5xx / 429),
  // as the cloud client counts failures for the circuit breaker.
  bool health_failure() const;

 private:
  CompletionsVerifier v_;
  int32_t rtt_ms_;
  VerifyReply last_;
  double cloud_ms_ = 0;
};

}  // namespace edgellm::hybrid
