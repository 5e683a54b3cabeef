#include "fake_cloud.h"

#include <httplib.h>

#include <chrono>

namespace edgellm::hybrid::testing {

using nlohmann::json;

namespace {
// Splits text into pieces of about n code points (never inside a UTF-8 sequence), so streamed
// placeholders such as "[EMAIL_1]" are cut across chunks.
std::vector<std::string> pieces(const std::string& s, size_t n) {
  std::vector<std::string> out;
  std::string cur;
  size_t cps = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    bool lead = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    if (lead && cps == n) {
      out.push_back(cur);
      cur.clear();
      cps = 0;
    }
    cur += s[i];
    if (lead) ++cps;
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }
json chunk_delta(const std::string& text) {
  return {{"object", "chat.completion.chunk"}, {"choices", {{{"index", 0}, {"delta", {{"content", text}}}, {"finish_reason", nullptr}}}}};
}
}  // namespace

FakeCloud::FakeCloud() : svr_(std::make_unique<httplib::Server>()) {
  svr_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    int n = ++requests_;
    json body = json::parse(req.body, nullptr, false);
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(body);
      auth_.push_back(req.get_header_value("Authorization"));
    }
    FakeMode mode = mode_.load();
    if (n <= fail_first_.load()) mode = FakeMode::Status500;
    bool stream = body.is_object() && body.value("stream", false);
    bool usage = stream && body.contains("stream_options") && body["stream_options"].value("include_usage", false);
    std::string reply = reply_for(body);
    switch (mode) {
      case FakeMode::Status500:
        res.status = 500;
        res.set_content(R"({"error":{"message":"upstream overloaded","type":"server_error"}})", "application/json");
        return;
      case FakeMode::Status400:
        res.status = 400;
        res.set_content(R"({"error":{"message":"bad parameter 'temperature'","type":"invalid_request_error"}})",
                        "application/json");
        return;
      case FakeMode::Sleep:
        {
          std::unique_lock<std::mutex> lock(mu_);
          released_cv_.wait_for(lock, std::chrono::milliseconds(sleep_ms_.load()), [this] { return released_; });
        }
        break;
      default:
        break;
    }
    if (!stream) {
      if (mode == FakeMode::Malformed) {
        res.set_content(R"({"id":"x","choices":[{"message":{"content":"hal)", "application/json");
        return;
      }
      json out = {{"id", "chatcmpl-fake"}, {"object", "chat.completion"}, {"model", body.value("model", "")},
                  {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", reply}}}, {"finish_reason", "stop"}}}},
                  {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 7}, {"total_tokens", 18}}}};
      std::string text = out.dump();
      if (mode == FakeMode::Drop) {
        // Promise the full length, send half, then hang up.
        auto half = std::make_shared<std::string>(text.substr(0, text.size() / 2));
        res.set_content_provider(text.size(), "application/json",
                                 [half](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset == 0) sink.write(half->data(), half->size());
                                   return offset == 0;
                                 });
        return;
      }
      res.set_content(text, "application/json");
      return;
    }
    auto parts = std::make_shared<std::vector<std::string>>();
    parts->push_back(sse({{"object", "chat.completion.chunk"}, {"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}}}}}}}));
    for (const auto& p : pieces(reply, 3)) parts->push_back(sse(chunk_delta(p)));
    if (mode == FakeMode::Malformed) parts->insert(parts->begin() + 2, "data: {\"choices\": [{\"delta\": \n\n");
    if (mode == FakeMode::ErrorEvent)
      parts->insert(parts->begin() + 2, sse({{"error", {{"message", "model overloaded"}}}}));
    parts->push_back(sse({{"object", "chat.completion.chunk"},
                          {"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}}}));
    if (usage)
      parts->push_back(sse({{"object", "chat.completion.chunk"}, {"choices", json::array()},
                            {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 7}}}}));
    parts->push_back("data: [DONE]\n\n");
    size_t stop_after = mode == FakeMode::Drop ? 3 : parts->size();
    res.set_chunked_content_provider("text/event-stream", [parts, stop_after](size_t, httplib::DataSink& sink) {
      for (size_t i = 0; i < parts->size(); ++i) {
        if (i == stop_after) return false;  // hang up mid-stream: no terminating chunk
        if (!sink.write((*parts)[i].data(), (*parts)[i].size())) return false;
      }
      sink.done();
      return true;
    });
  });
  port_ = svr_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
  for (int i = 0; i < 500 && !svr_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

FakeCloud::~FakeCloud() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  released_cv_.notify_all();
  svr_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeCloud::base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

void FakeCloud::set_reply(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  reply_ = text;
}

std::string FakeCloud::reply_for(const json& body) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!reply_.empty()) return reply_;
  std::string last;
  if (body.is_object() && body.contains("messages") && body["messages"].is_array())
    for (const auto& m : body["messages"])
      if (m.value("role", "") == "user" && m.contains("content") && m["content"].is_string()) last = m["content"];
  return "echo: " + last;
}

std::vector<json> FakeCloud::bodies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bodies_;
}

std::vector<std::string> FakeCloud::auth_headers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auth_;
}

}  // namespace edgellm::hybrid::testing
