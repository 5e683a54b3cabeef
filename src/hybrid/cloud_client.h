#pragma once
// Client for any OpenAI-compatible /v1/chat/completions endpoint over libcurl: plain and SSE
// streamed answers, connect/total timeouts, retries with exponential backoff on connection
// errors and 5xx, a circuit breaker, and one error class per way the call can fail.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "hybrid/budget.h"

namespace edgellm::hybrid {

struct CloudConfig {
  std::string base_url;            // e.g. https://api.openai.com/v1 (".../chat/completions" is appended)
  std::string model;               // replaces the request's "model"
  std::string api_key_env = "EDGELLM_CLOUD_API_KEY";  // env var holding the bearer key
  std::string api_key;             // explicit key (tests); takes precedence over the env var
  int64_t connect_timeout_ms = 3000;
  int64_t timeout_ms = 60000;      // whole request, streamed ones included
  int max_retries = 2;             // extra attempts after the first
  int64_t backoff_ms = 200;        // first retry delay, doubled each time
  int64_t max_backoff_ms = 4000;
  bool configured() const { return !base_url.empty(); }
};

enum class CloudError {
  None,
  Timeout,        // connect or total timeout
  Connect,        // could not connect / resolve / TLS
  HttpStatus,     // non-2xx answer (status and a body excerpt in the message)
  MalformedJson,  // body or an SSE event was not the expected JSON
  Dropped,        // connection ended mid-answer (stream without [DONE] / finish_reason)
  CircuitOpen,    // the breaker refused the call
  Cancelled,      // the delta callback asked to stop
  NotConfigured,
};
const char* cloud_error_name(CloudError e);  // "timeout", "http_status", ...
// Whether a failed call says the endpoint is unhealthy (the circuit breaker counts it): no
// answer, a broken or malformed one, a 5xx, 429 or a status that is not an error (redirect); a
// 4xx says only that this request was refused.
bool is_health_failure(CloudError error, int http_status);

struct CloudResult {
  CloudError error = CloudError::None;
  int http_status = 0;
  std::string message;         // human-readable cause (never contains the request text)
  std::string text;            // the assistant's content (full, also when streamed)
  std::string finish_reason;
  nlohmann::json tool_calls;   // choices[0].message.tool_calls (streamed: assembled from deltas)
  int64_t prompt_tokens = -1;  // from "usage" when the endpoint reports it
  int64_t completion_tokens = -1;
  int attempts = 0;
  double latency_ms = 0;
  bool delivered = false;      // some delta reached the callback
  bool ok() const { return error == CloudError::None; }
};

// Receives each content delta of a streamed answer; return false to cancel.
using DeltaFn = std::function<bool(std::string_view)>;

class CloudClient {
 public:
  // `breaker` may be null (no circuit breaking); it must outlive the client.
  explicit CloudClient(CloudConfig cfg, CircuitBreaker* breaker = nullptr);
  // `body` is an OpenAI chat request; "model" and "stream" are set by the client.
  CloudResult complete(const nlohmann::json& body);
  CloudResult stream(const nlohmann::json& body, const DeltaFn& on_delta);
  const CloudConfig& config() const { return cfg_; }

 private:
  CloudResult run(const nlohmann::json& body, const DeltaFn* on_delta);
  std::string api_key() const;

  CloudConfig cfg_;
  CircuitBreaker* breaker_;
};

// Incremental Server-Sent Events parser for chat completion chunks (exposed for tests).
class SseParser {
 public:
  // Feeds raw bytes. Calls on_delta for each content delta. Returns false on a malformed event
  // (see error()) or when on_delta asks to stop (cancelled()).
  bool feed(std::string_view bytes, const DeltaFn& on_delta);
  // End of input: dispatches a last event not followed by a blank line.
  bool finish(const DeltaFn& on_delta);
  bool done() const { return done_; }            // saw "data: [DONE]"
  const std::string& finish_reason() const { return finish_reason_; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  const std::string& error() const { return error_; }
  bool cancelled() const { return cancelled_; }
  bool any_event() const { return events_ > 0; }
  bool remote_error() const { return remote_error_; }
  // Tool calls assembled from delta.tool_calls fragments (by index); null when none.
  const nlohmann::json& tool_calls() const { return tool_calls_; }  // the stream carried an {"error": ...} event

 private:
  bool event(std::string_view data, const DeltaFn& on_delta);
  void merge_tool_calls(const nlohmann::json& parts);
  std::string buf_;
  std::string data_;
  bool done_ = false;
  bool cancelled_ = false;
  bool remote_error_ = false;
  nlohmann::json tool_calls_;
  int events_ = 0;
  std::string finish_reason_;
  int64_t prompt_tokens_ = -1, completion_tokens_ = -1;
  std::string error_;
};

}  // namespace edgellm::hybrid
