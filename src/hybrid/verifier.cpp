#include "hybrid/verifier.h"

#include <curl/curl.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "hybrid/json_depth.h"

namespace edgellm::hybrid {

using nlohmann::json;

namespace {

VerifyReply bad(const std::string& why) {
  VerifyReply r;
  r.error = CloudError::MalformedJson;
  r.message = why;
  return r;
}

// "token_id:N" with 0 <= N < n_vocab, else -1.
int32_t token_id(const std::string& s, int32_t n_vocab) {
  constexpr std::string_view kPrefix = "token_id:";
  if (s.size() <= kPrefix.size() || s.size() > kPrefix.size() + 10 || s.compare(0, kPrefix.size(), kPrefix) != 0)
    return -1;
  int64_t v = 0;
  for (size_t i = kPrefix.size(); i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v < n_vocab ? static_cast<int32_t>(v) : -1;
}

size_t on_write(char* p, size_t size, size_t n, void* ud) {
  auto* body = static_cast<std::string*>(ud);
  if (body->size() + size * n > (64u << 20)) return 0;
  body->append(p, size * n);
  return size * n;
}

}  // namespace

VerifyReply parse_verify_answer(const std::string& body, size_t n_prompt, size_t n_context, int32_t n_vocab) {
  if (!json_text_within_depth(body)) return bad("answer nests JSON too deeply");
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("answer is not JSON");
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() || !j["choices"][0].is_object())
    return bad("answer has no choices");
  const json& c = j["choices"][0];
  if (!c.contains("logprobs") || !c["logprobs"].is_object()) return bad("answer has no logprobs (echo unsupported?)");
  const json& lp = c["logprobs"];
  if (!lp.contains("tokens") || !lp["tokens"].is_array() || !lp.contains("top_logprobs") ||
      !lp["top_logprobs"].is_array() || lp["top_logprobs"].size() != lp["tokens"].size())
    return bad("logprobs lack tokens / top_logprobs");
  const json& toks = lp["tokens"];
  const json& tops = lp["top_logprobs"];
  if (toks.size() < n_prompt) return bad("logprobs are short: " + std::to_string(toks.size()) + " of " +
                                         std::to_string(n_prompt) + " prompt positions");
  VerifyReply r;
  for (size_t p = n_context; p < n_prompt; ++p) {
    if (p == 0) return bad("no context before the first draft token");
    const json& t = tops[p];
    if (!t.is_object() || t.empty()) return bad("no top_logprobs at position " + std::to_string(p));
    int32_t best = -1;
    double best_lp = 0;
    for (auto it = t.begin(); it != t.end(); ++it) {
      const int32_t id = token_id(it.key(), n_vocab);
      if (id < 0 || !it.value().is_number()) return bad("top_logprobs entry is not token_id:N -> number");
      const double v = it.value().get<double>();
      if (best < 0 || v > best_lp || (v == best_lp && id < best)) best = id, best_lp = v;
    }
    r.greedy.push_back(best);
  }
  if (toks.size() > n_prompt) {
    const int32_t id = toks[n_prompt].is_string() ? token_id(toks[n_prompt].get<std::string>(), n_vocab) : -1;
    if (id < 0) return bad("the generated token is not token_id:N");
    r.greedy.push_back(id);
  } else if (c.contains("finish_reason") && c["finish_reason"] == "stop") {
    r.greedy.push_back(kVerifyEnd);
  } else {
    return bad("the answer has no generated token");
  }
  return r;
}

CompletionsVerifier::CompletionsVerifier(CloudConfig cfg, int32_t n_vocab) : cfg_(std::move(cfg)), n_vocab_(n_vocab) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

VerifyReply CompletionsVerifier::verify(const std::vector<int32_t>& tokens, size_t n_context) {
  const auto t0 = std::chrono::steady_clock::now();
  ++requests_;
  json req = {{"prompt", tokens}, {"echo", true}, {"logprobs", 1}, {"max_tokens", 1}, {"temperature", 0},
              {"return_tokens_as_token_ids", true}};
  if (!cfg_.model.empty()) req["model"] = cfg_.model;
  const std::string payload = req.dump();
  std::string url = cfg_.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/completions";
  std::string body;
  long status = 0;
  CURL* h = curl_easy_init();
  if (!h) return {CloudError::Connect, "libcurl could not create a handle", {}, 0};
  curl_slist* hdrs = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth;
  if (const char* k = cfg_.api_key.empty() ? std::getenv(cfg_.api_key_env.c_str()) : cfg_.api_key.c_str(); k && *k) {
    auth = std::string("Authorization: Bearer ") + k;
    hdrs = curl_slist_append(hdrs, auth.c_str());
  }
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg_.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg_.timeout_ms));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (!std::getenv("no_proxy") && !std::getenv("NO_PROXY"))
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
  const CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  VerifyReply r;
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    r = {CloudError::Timeout, "no answer within the timeout", {}, 0};
  } else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_URL_MALFORMAT) {
    r = {CloudError::Connect, std::string("cannot reach the verifier: ") + curl_easy_strerror(rc), {}, 0};
  } else if (rc != CURLE_OK) {
    r = {CloudError::Dropped, std::string("connection dropped: ") + curl_easy_strerror(rc), {}, 0};
  } else if (status < 200 || status >= 300) {
    r = {CloudError::HttpStatus, "HTTP " + std::to_string(status), {}, 0, static_cast<int>(status)};
  } else {
    r = parse_verify_answer(body, tokens.size(), n_context, n_vocab_);
    r.http_status = static_cast<int>(status);
  }
  r.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

RuntimeVerifier::RuntimeVerifier(CloudConfig cfg, int32_t n_vocab, int32_t rtt_ms)
    : v_(std::move(cfg), n_vocab), rtt_ms_(rtt_ms) {}

std::vector<int32_t> RuntimeVerifier::verify(const std::vector<int32_t>& tokens, size_t n_context) {
  const auto t0 = std::chrono::steady_clock::now();
  if (rtt_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(rtt_ms_));
  last_ = v_.verify(tokens, n_context);
  cloud_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!last_.ok()) throw runtime::VerifierError(std::string(cloud_error_name(last_.error)) + ": " + last_.message);
  for (auto& t : last_.greedy)
    if (t == kVerifyEnd) t = runtime::RemoteVerifier::kEnd;
  return last_.greedy;
}

bool RuntimeVerifier::health_failure() const { return is_health_failure(last_.error, last_.http_status); }

}  // namespace edgellm::hybrid
