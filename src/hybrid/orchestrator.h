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
#include "runtime/engine.h"

namespace edgellm::hybrid {

// Receives text deltas for the client; returns false when the client is gone.
using StreamFn = std::function<bool(std::string_view)>;

// The device as the orchestrator sees it: a prompt and generation parameters in, the runtime's
// result out. The server runs it on its scheduler (routes_hybrid.cpp); the CLI, the C API and
// tests on a Session (SessionBackend). No request body reaches it.
class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // `on_delta` null: not streamed; otherwise called with each text piece, and the generation
  // stops when it returns false.
  virtual runtime::GenerateResult generate(const std::vector<int32_t>& prompt, const runtime::GenerateParams& params,
                                           const StreamFn* on_delta) = 0;
  // The device's model (tokenizer, vocabulary) and context per request, for drafting toward a
  // cloud verifier (HybridRequest::verify_draft_max); null / 0: this device cannot draft.
  virtual const runtime::Engine* engine() const { return nullptr; }
  virtual int32_t n_ctx() const { return 0; }
};

// One runtime::Session as the device.
class SessionBackend final : public DeviceBackend {
 public:
  explicit SessionBackend(runtime::Session& session) : session_(session) {}
  runtime::GenerateResult generate(const std::vector<int32_t>& prompt, const runtime::GenerateParams& params,
                                   const StreamFn* on_delta) override;
  const runtime::Engine* engine() const override { return &session_.engine(); }
  int32_t n_ctx() const override { return session_.n_ctx(); }

 private:
  runtime::Session& session_;
};

// Facts about the local model the router needs.
struct LocalInfo {
  int32_t n_ctx = 0;             // per-request context (prompt + answer), 0: unknown
  bool supports_tools = true;    // the chat template can render tools natively
};

struct HybridRequest {
  nlohmann::json body;           // OpenAI chat request, what the cloud is sent; may carry "route"
  std::string request_id;
  std::string app;               // calling application (audit only)
  int64_t prompt_tokens = -1;    // local tokenizer count if known; else estimated from bytes
  // What the device runs: the conversation as prompt tokens, and its generation parameters.
  std::vector<int32_t> prompt;
  runtime::GenerateParams params;
  // > 0: device drafts of up to this many tokens verified by the cloud's /v1/completions (issue
  // 12), so the answer is the cloud model's greedy answer; greedy params only. Privacy (any
  // finding not allowed as is keeps it on the device: token ids cannot be redacted), budget, the
  // breaker and the route record apply as to any cloud call (docs/hybrid.md).
  int32_t verify_draft_max = 0;
};

// Streamed requests: called when a cloud stream breaks after text reached the client. If it
// returns true (the client was told to discard that text), the device answers in the same
// stream as a fallback; unset or false: the response fails (ok = false).
using StreamBreakFn = std::function<bool(const std::string& message)>;

struct HybridResponse {
  bool ok = true;                // false: no tier produced a complete answer (see error)
  std::string error;
  // The answer, one type whoever gave it: the device's runtime result as it came back, or the
  // cloud's in the same shape (text, finish_reason, n_prompt and n_generated as the cloud
  // reported them, -1 when it did not; no tokens or timings). The full text also when streamed.
  runtime::GenerateResult result;
  nlohmann::json tool_calls;     // cloud tool calls (restored), if any
  RouteRecord route;
};

class Orchestrator {
 public:
  // Throws InvalidArgument for a bad policy (e.g. an uncompilable user pattern) and Error when
  // the audit log cannot be opened.
  Orchestrator(Policy policy, LocalInfo local, NowMs clock = steady_now_ms);
  ~Orchestrator();

  // One request. `on_delta` null: non-streamed. Throws InvalidArgument for a bad "route" object.
  // The device runs req.prompt with req.params on `device` (exceptions from it propagate, after
  // an audit line with status "error").
  HybridResponse handle(const HybridRequest& req, DeviceBackend& device, const StreamFn* on_delta,
                        const StreamBreakFn& on_stream_break = nullptr);

  const Policy& policy() const { return policy_; }
  BudgetWindow& budget() { return budget_; }
  CircuitBreaker& breaker() { return breaker_; }

 private:
  struct Prepared;
  HybridResponse run_cloud(Prepared& p, const StreamFn* on_delta, bool* delivered);
  HybridResponse handle_verified(Prepared& p, DeviceBackend& device, const StreamFn* on_delta);
  runtime::GenerateResult run_local(const Prepared& p, DeviceBackend& device, const StreamFn* on_delta, double* ms);
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
