// libcurl transport for CloudClient: one easy handle per attempt, retries with exponential
// backoff, circuit-breaker bookkeeping and error classification.
#include "hybrid/cloud_client.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <thread>

#include "hybrid/json_depth.h"

namespace edgellm::hybrid {

using nlohmann::json;

const char* cloud_error_name(CloudError e) {
  switch (e) {
    case CloudError::None: return "none";
    case CloudError::Timeout: return "timeout";
    case CloudError::Connect: return "connect";
    case CloudError::HttpStatus: return "http_status";
    case CloudError::MalformedJson: return "malformed_json";
    case CloudError::Dropped: return "dropped";
    case CloudError::CircuitOpen: return "circuit_open";
    case CloudError::Cancelled: return "cancelled";
    case CloudError::NotConfigured: return "not_configured";
  }
  return "?";
}

bool is_health_failure(CloudError error, int http_status) {
  switch (error) {
    case CloudError::Timeout:
    case CloudError::Connect:
    case CloudError::MalformedJson:
    case CloudError::Dropped:
      return true;
    case CloudError::HttpStatus:
      return http_status >= 500 || http_status < 400 || http_status == 429;
    default:
      return false;
  }
}

namespace {

void curl_global() {
  static const bool once = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)once;
}

constexpr size_t kMaxBody = 32u << 20;  // a chat answer larger than this is not plausible

struct Transfer {
  CURL* h = nullptr;
  const DeltaFn* on_delta = nullptr;
  SseParser sse;
  std::string body;   // non-streamed body, error bodies, or a streamed request answered in JSON
  long status = 0;
  bool delivered = false;
  bool too_big = false;
  std::exception_ptr failure;  // thrown by the caller's delta callback; rethrown after curl returns
};

size_t write_body(char* ptr, size_t len, Transfer* t);

// libcurl is C: an exception must not unwind through it. It is kept and the transfer aborted.
size_t on_write(char* ptr, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  try {
    return write_body(ptr, size * n, t);
  } catch (...) {
    t->failure = std::current_exception();
    return 0;
  }
}

size_t write_body(char* ptr, size_t len, Transfer* t) {
  if (t->status == 0) curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
  bool sse = t->on_delta && t->status >= 200 && t->status < 300;
  if (sse) {
    // Keep the start too, in case the endpoint ignored "stream" and sent one JSON object.
    if (t->body.size() < 65536) t->body.append(ptr, std::min(len, 65536 - t->body.size()));
    DeltaFn relay = [t](std::string_view d) {
      t->delivered = true;
      return (*t->on_delta)(d);
    };
    return t->sse.feed(std::string_view(ptr, len), relay) ? len : 0;
  }
  if (t->body.size() + len > kMaxBody) {
    t->too_big = true;
    return 0;
  }
  t->body.append(ptr, len);
  return len;
}

std::string excerpt(const std::string& s, size_t n = 200) {
  std::string e = s.substr(0, n);
  for (auto& c : e) if (c == '\n' || c == '\r') c = ' ';
  return s.size() > n ? e + "..." : e;
}

// Fills text/finish_reason/usage from a non-streamed chat completion; false if it is not one.
bool parse_completion(const std::string& body, CloudResult& r) {
  if (!json_text_within_depth(body)) return false;  // its tool calls are copied recursively
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
      j["choices"].empty() || !j["choices"][0].is_object())
    return false;
  const json& c0 = j["choices"][0];
  if (!c0.contains("message") || !c0["message"].is_object()) return false;
  const json& m = c0["message"];
  if (m.contains("content") && m["content"].is_string()) r.text = m["content"];
  else if (!(m.contains("content") && m["content"].is_null())) return false;
  if (m.contains("tool_calls")) r.tool_calls = m["tool_calls"];
  if (c0.contains("finish_reason") && c0["finish_reason"].is_string()) r.finish_reason = c0["finish_reason"];
  if (j.contains("usage") && j["usage"].is_object()) {
    const json& u = j["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) r.prompt_tokens = u["prompt_tokens"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      r.completion_tokens = u["completion_tokens"];
  }
  return true;
}

std::string endpoint_url(const std::string& base) {
  std::string u = base;
  while (!u.empty() && u.back() == '/') u.pop_back();
  const std::string tail = "/chat/completions";
  if (u.size() >= tail.size() && u.compare(u.size() - tail.size(), tail.size(), tail) == 0) return u;
  return u + tail;
}

}  // namespace

CloudClient::CloudClient(CloudConfig cfg, CircuitBreaker* breaker) : cfg_(std::move(cfg)), breaker_(breaker) {
  curl_global();
}

std::string CloudClient::api_key() const {
  if (!cfg_.api_key.empty()) return cfg_.api_key;
  if (cfg_.api_key_env.empty()) return {};
  const char* v = std::getenv(cfg_.api_key_env.c_str());
  return v ? v : "";
}

CloudResult CloudClient::complete(const json& body) { return run(body, nullptr); }
CloudResult CloudClient::stream(const json& body, const DeltaFn& on_delta) { return run(body, &on_delta); }

namespace {

// One HTTP attempt.
CloudResult attempt(const CloudConfig& cfg, const std::string& key, const std::string& payload,
                    const DeltaFn* on_delta) {
  CloudResult r;
  Transfer t;
  t.on_delta = on_delta;
  t.h = curl_easy_init();
  if (!t.h) {
    r.error = CloudError::Connect;
    r.message = "libcurl could not create a handle";
    return r;
  }
  std::string url = endpoint_url(cfg.base_url);
  curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, on_delta ? "Accept: text/event-stream" : "Accept: application/json");
  std::string auth = "Authorization: Bearer " + key;
  if (!key.empty()) hdrs = curl_slist_append(hdrs, auth.c_str());
  curl_easy_setopt(t.h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(t.h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(t.h, CURLOPT_POST, 1L);
  curl_easy_setopt(t.h, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(t.h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(t.h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(t.h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(t.h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg.connect_timeout_ms));
  curl_easy_setopt(t.h, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg.timeout_ms));
  curl_easy_setopt(t.h, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in threads
  curl_easy_setopt(t.h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(t.h, CURLOPT_USERAGENT, "edgellm-hybrid/0.1");
  if (!std::getenv("no_proxy") && !std::getenv("NO_PROXY"))
    curl_easy_setopt(t.h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");

  CURLcode rc = curl_easy_perform(t.h);
  if (t.status == 0) curl_easy_getinfo(t.h, CURLINFO_RESPONSE_CODE, &t.status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(t.h);
  if (t.failure) std::rethrow_exception(t.failure);
  r.http_status = static_cast<int>(t.status);
  r.delivered = t.delivered;
  DeltaFn relay;
  if (on_delta) relay = [&](std::string_view d) {
    r.delivered = true;
    return (*on_delta)(d);
  };

  bool http_ok = t.status >= 200 && t.status < 300;
  if (on_delta && http_ok && (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)) t.sse.finish(relay);
  if (t.sse.cancelled()) {
    r.error = CloudError::Cancelled;
    r.message = "cancelled by the caller";
  } else if (on_delta && http_ok && !t.sse.error().empty()) {
    r.error = t.sse.remote_error() ? CloudError::HttpStatus : CloudError::MalformedJson;
    r.message = t.sse.error();
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    r.error = CloudError::Timeout;
    r.message = std::string(t.status ? "answer not finished" : "no answer") + " within the timeout (connect " +
                std::to_string(cfg.connect_timeout_ms) + " ms, total " + std::to_string(cfg.timeout_ms) + " ms)";
  } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
             rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
    r.error = CloudError::Connect;
    r.message = std::string("cannot reach ") + url + ": " + curl_easy_strerror(rc);
  } else if (t.too_big) {
    r.error = CloudError::MalformedJson;
    r.message = "answer larger than 32 MiB";
  } else if (rc != CURLE_OK && !(t.status && !http_ok)) {
    // Partial file, receive error, nothing received: the connection ended early.
    r.error = CloudError::Dropped;
    r.message = std::string("connection dropped: ") + curl_easy_strerror(rc);
  } else if (!http_ok) {
    r.error = CloudError::HttpStatus;
    r.message = "HTTP " + std::to_string(t.status) + ": " + excerpt(t.body);
  } else if (!on_delta) {
    if (!parse_completion(t.body, r)) {
      r.error = CloudError::MalformedJson;
      r.message = "answer is not a chat completion: " + excerpt(t.body, 120);
    }
  } else if (!t.sse.any_event()) {
    // Endpoint answered a streamed request with a plain completion: deliver it as one delta.
    if (parse_completion(t.body, r)) {
      if (!r.text.empty() && !relay(r.text)) {
        r.error = CloudError::Cancelled;
        r.message = "cancelled by the caller";
      }
    } else {
      r.error = t.body.empty() ? CloudError::Dropped : CloudError::MalformedJson;
      r.message = t.body.empty() ? "empty answer to a streamed request"
                                 : "streamed answer is neither SSE nor JSON: " + excerpt(t.body, 120);
    }
  } else if (!t.sse.done() && t.sse.finish_reason().empty()) {
    r.error = CloudError::Dropped;
    r.message = "stream ended without [DONE] or finish_reason";
  } else {
    r.finish_reason = t.sse.finish_reason();
    r.tool_calls = t.sse.tool_calls();
    r.prompt_tokens = t.sse.prompt_tokens();
    r.completion_tokens = t.sse.completion_tokens();
  }
  return r;
}

bool health_failure(const CloudResult& r) { return is_health_failure(r.error, r.http_status); }

}  // namespace

CloudResult CloudClient::run(const json& body, const DeltaFn* on_delta) {
  auto t0 = std::chrono::steady_clock::now();
  CloudResult r;
  if (!cfg_.configured()) {
    r.error = CloudError::NotConfigured;
    r.message = "no cloud endpoint configured (policy cloud.base_url)";
    return r;
  }
  json req = body;
  if (!cfg_.model.empty()) req["model"] = cfg_.model;
  req["stream"] = on_delta != nullptr;
  if (on_delta) req["stream_options"] = {{"include_usage", true}};
  else req.erase("stream_options");
  std::string payload = req.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string key = api_key();

  std::string accumulated;
  DeltaFn collect;
  if (on_delta) collect = [&](std::string_view d) {
    accumulated.append(d);
    return (*on_delta)(d);
  };
  int64_t delay = cfg_.backoff_ms;
  for (int a = 0;; ++a) {
    if (breaker_ && !breaker_->allow()) {
      CloudResult open;
      open.error = CloudError::CircuitOpen;
      open.message = "cloud endpoint marked down after repeated failures (circuit open)";
      open.attempts = a;
      r = open;
      break;
    }
    try {
      r = attempt(cfg_, key, payload, on_delta ? &collect : nullptr);
    } catch (...) {  // the caller's delta callback threw: nothing learned about the endpoint
      if (breaker_) breaker_->release();
      throw;
    }
    r.attempts = a + 1;
    if (breaker_) {
      if (r.ok() || (r.error == CloudError::HttpStatus && !health_failure(r))) breaker_->record_success();
      else if (health_failure(r)) breaker_->record_failure();
      else breaker_->release();
    }
    bool retryable = !r.delivered && (r.error == CloudError::Connect ||
                                      (r.error == CloudError::HttpStatus && r.http_status >= 500));
    if (!retryable || a >= cfg_.max_retries) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    delay = std::min(delay * 2, cfg_.max_backoff_ms);
  }
  if (on_delta) r.text = accumulated;  // on failure: the partial text already delivered
  r.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace edgellm::hybrid
