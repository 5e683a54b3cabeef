#pragma once
// The facade the server calls for each chat request: scan PII -> decide -> device or cloud
// (redact -> cloud -> restore, streaming included) -> judge a device answer -> maybe escalate ->
// fall back to the device when the cloud fails -> audit -> answer + RouteRecord.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hybrid/audit.h"
#include "hybrid/budget.h"
#include "hybrid/cloud_client.h"
#include "hybrid/pii.h"
#include "hybrid/policy.h"
#include "hybrid/router.h"

namespace edgellm::hybrid {

// What the server's local generation returns.
struct LocalResult {
  std::string text;
  std::vector<float> logprobs;    // per generated token (Sampler::last_logprob)
  std::vector<float> entropies;   // per generated token (Sampler::last_entropy)
  std::string finish_reason = "stop";
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  double latency_ms = -1;         // < 0: measured by the orchestrator around the call
  nlohmann::json extra;           // anything the server wants back untouched (e.g. tool_calls)
};

// Receives text deltas for the client; returns false when the client is gone.
using StreamFn = std::function<bool(std::string_view)>;
// Runs the request on the device. `on_delta` is null for a non-streamed generation; otherwise
// the function calls it for each text delta and stops when it returns false.
using LocalGenerateFn = std::function<LocalResult(const nlohmann::json& body, const StreamFn* on_delta)>;

// Facts about the local model the router needs.
struct LocalInfo {
  int32_t n_ctx = 0;             // per-request context (prompt + answer), 0: unknown
  bool supports_tools = true;    // the chat template can render tools natively
};

struct HybridRequest {
  nlohmann::json body;           // OpenAI chat request; may carry "route"
  std::string request_id;
  std::string app;               // calling application (audit only)
  int64_t prompt_tokens = -1;    // local tokenizer count if known; else estimated from bytes
};

// Streamed requests: called when a cloud stream breaks after text reached the client. If it
// returns true (the client was told to discard that text), the device answers in the same
// stream as a fallback; unset or false: the response fails (ok = false).
using StreamBreakFn = std::function<bool(const std::string& message)>;

struct HybridResponse {
  bool ok = true;                // false: no tier produced a complete answer (see error)
  std::string error;
  std::string text;              // full answer (also when it was streamed)
  std::string finish_reason;
  nlohmann::json tool_calls;     // cloud tool calls (restored), if any
  nlohmann::json local_extra;    // LocalResult::extra when the device answered
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  RouteRecord route;
};

class Orchestrator {
 public:
  // Throws InvalidArgument for a bad policy (e.g. an uncompilable user pattern) and Error when
  // the audit log cannot be opened.
  Orchestrator(Policy policy, LocalInfo local, NowMs clock = steady_now_ms);
  ~Orchestrator();

  // One request. `on_delta` null: non-streamed. Throws InvalidArgument for a bad "route" object;
  // exceptions from `local` propagate (after an audit line with status "error").
  HybridResponse handle(const HybridRequest& req, const LocalGenerateFn& local, const StreamFn* on_delta,
                        const StreamBreakFn& on_stream_break = nullptr);

  const Policy& policy() const { return policy_; }
  BudgetWindow& budget() { return budget_; }
  CircuitBreaker& breaker() { return breaker_; }

 private:
  struct Prepared;
  HybridResponse run_cloud(Prepared& p, const StreamFn* on_delta, bool* delivered);
  LocalResult run_local(const Prepared& p, const LocalGenerateFn& local, const StreamFn* on_delta, double* ms);
  CloudState cloud_state() const;
  void finish(const Prepared& p, HybridResponse& r, bool cloud_used, int64_t device_tokens, int64_t cloud_tokens,
              const char* status);

  Policy policy_;
  LocalInfo local_;
  PiiDetector detector_;
  Router router_;
  BudgetWindow budget_;
  CircuitBreaker breaker_;
  CloudClient cloud_;
  std::unique_ptr<AuditLog> audit_;
};

// Fields of an OpenAI request that only the local server understands; stripped before the
// request goes to the cloud.
const std::vector<std::string>& local_only_request_fields();

}  // namespace edgellm::hybrid
