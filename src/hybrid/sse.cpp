// Incremental SSE parsing of OpenAI chat-completion chunks: bytes may arrive split anywhere
// (inside a line, inside a UTF-8 character, inside "\r\n").
#include <nlohmann/json.hpp>

#include "hybrid/cloud_client.h"
#include "hybrid/json_depth.h"

namespace edgellm::hybrid {

namespace {
std::string excerpt(std::string_view s) {
  std::string e(s.substr(0, 120));
  if (s.size() > 120) e += "...";
  return e;
}
}  // namespace

bool SseParser::feed(std::string_view bytes, const DeltaFn& on_delta) {
  if (!error_.empty() || cancelled_) return false;
  buf_.append(bytes);
  size_t start = 0;
  while (true) {
    size_t nl = buf_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buf_.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // blank line: end of event
      if (!data_.empty()) {
        std::string data;
        data.swap(data_);
        if (!event(data, on_delta)) {
          buf_.erase(0, start);
          return false;
        }
      }
      continue;
    }
    if (line.front() == ':') continue;  // comment / keep-alive
    if (line.substr(0, 5) == "data:") {
      std::string_view v = line.substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (!data_.empty()) data_ += '\n';
      data_.append(v);
    }
    // event:, id:, retry: carry nothing we need.
  }
  buf_.erase(0, start);
  return true;
}

bool SseParser::finish(const DeltaFn& on_delta) {
  if (!error_.empty() || cancelled_) return false;
  if (!buf_.empty()) {
    std::string rest;
    rest.swap(buf_);
    if (!feed(rest + "\n", on_delta)) return false;
  }
  if (!data_.empty()) {
    std::string data;
    data.swap(data_);
    return event(data, on_delta);
  }
  return true;
}

// OpenAI streams a tool call as fragments: the first carries index, id, type and name, later
// ones append to function.arguments.
void SseParser::merge_tool_calls(const nlohmann::json& parts) {
  if (!tool_calls_.is_array()) tool_calls_ = nlohmann::json::array();
  for (const auto& part : parts) {
    if (!part.is_object()) continue;
    size_t idx = part.contains("index") && part["index"].is_number_unsigned() ? part["index"].get<size_t>()
                                                                              : tool_calls_.size();
    if (idx > 64) continue;  // implausible; ignore rather than allocate
    while (tool_calls_.size() <= idx)
      tool_calls_.push_back({{"id", ""}, {"type", "function"}, {"function", {{"name", ""}, {"arguments", ""}}}});
    auto& call = tool_calls_[idx];
    if (part.contains("id") && part["id"].is_string()) call["id"] = part["id"];
    if (part.contains("type") && part["type"].is_string()) call["type"] = part["type"];
    if (part.contains("function") && part["function"].is_object()) {
      const auto& fn = part["function"];
      if (fn.contains("name") && fn["name"].is_string())
        call["function"]["name"] = call["function"]["name"].get<std::string>() + fn["name"].get<std::string>();
      if (fn.contains("arguments") && fn["arguments"].is_string())
        call["function"]["arguments"] =
            call["function"]["arguments"].get<std::string>() + fn["arguments"].get<std::string>();
    }
  }
}

bool SseParser::event(std::string_view data, const DeltaFn& on_delta) {
  ++events_;
  if (data == "[DONE]") {
    done_ = true;
    return true;
  }
  // Nesting is bounded before parsing: an error object is dumped into the message recursively.
  nlohmann::json j = json_text_within_depth(data) ? nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false)
                                                  : nlohmann::json(nlohmann::json::value_t::discarded);
  if (j.is_discarded() || !j.is_object()) {
    error_ = "malformed JSON in stream event: " + excerpt(data);
    return false;
  }
  if (j.contains("error")) {
    const auto& e = j["error"];
    remote_error_ = true;
    error_ = "error event in stream: " +
             excerpt(e.is_object() && e.contains("message") && e["message"].is_string()
                         ? e["message"].get<std::string>()
                         : e.dump());
    return false;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) prompt_tokens_ = u["prompt_tokens"];
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      completion_tokens_ = u["completion_tokens"];
  }
  if (!j.contains("choices")) return true;
  const auto& choices = j["choices"];
  if (!choices.is_array()) {
    error_ = "stream event has a non-array \"choices\": " + excerpt(data);
    return false;
  }
  if (choices.empty()) return true;
  const auto& c0 = choices[0];
  if (!c0.is_object()) {
    error_ = "stream event choice is not an object";
    return false;
  }
  if (c0.contains("finish_reason") && c0["finish_reason"].is_string()) finish_reason_ = c0["finish_reason"];
  if (c0.contains("delta") && c0["delta"].is_object()) {
    const auto& d = c0["delta"];
    if (d.contains("tool_calls") && d["tool_calls"].is_array()) merge_tool_calls(d["tool_calls"]);
    if (d.contains("content") && d["content"].is_string()) {
      const std::string& text = d["content"].get_ref<const std::string&>();
      if (!text.empty() && !on_delta(text)) {
        cancelled_ = true;
        return false;
      }
    }
  }
  return true;
}

}  // namespace edgellm::hybrid
