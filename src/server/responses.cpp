#include "server/responses.h"

namespace edgellm::server {
namespace {

ojson tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  ojson a = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    ojson c;
    if (with_index) c["index"] = i;
    c["id"] = calls[i].id;
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    a.push_back(std::move(c));
  }
  return a;
}

// Cloud tool calls in the shape OpenAI clients expect (ids and types filled in if missing).
ojson cloud_calls_json(const ojson& calls, bool with_index) {
  ojson a = ojson::array();
  size_t i = 0;
  for (const auto& tc : calls) {
    if (!tc.is_object()) continue;
    ojson c;
    if (with_index) c["index"] = i;
    c["id"] = tc.contains("id") && tc["id"].is_string() ? tc["id"] : ojson(new_call_id());
    c["type"] = "function";
    c["function"] = tc.contains("function") ? tc["function"] : ojson::object();
    a.push_back(std::move(c));
    ++i;
  }
  return a;
}

bool has_calls(const ojson& calls) { return calls.is_array() && !calls.empty(); }

}  // namespace

ojson usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  prompt_tokens = std::max<int64_t>(prompt_tokens, 0);
  completion_tokens = std::max<int64_t>(completion_tokens, 0);
  return {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

ojson whole_json(const ReplyCtx& c, const Answer& a) {
  const bool chat = c.g->chat;
  ojson out = {{"id", c.id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", c.created},
               {"model", c.model_id}, {"system_fingerprint", "edgellm"}};
  std::string reason = a.finish_reason;
  ojson choice = {{"index", 0}};
  if (chat) {
    ojson msg = {{"role", "assistant"}, {"content", a.text}, {"refusal", nullptr}};
    if (a.local && c.g->parse_tools) {
      ParsedOutput p = parse_tool_output(a.text, c.g->tools);
      if (!p.calls.empty()) {
        msg["content"] = p.content.empty() ? ojson(nullptr) : ojson(p.content);
        msg["tool_calls"] = tool_calls_json(p.calls, false);
        reason = "tool_calls";
      }
    } else if (!a.local && has_calls(a.cloud_tool_calls)) {
      if (a.text.empty()) msg["content"] = nullptr;
      msg["tool_calls"] = cloud_calls_json(a.cloud_tool_calls, false);
      reason = "tool_calls";
    }
    choice["message"] = msg;
  } else {
    choice["text"] = a.text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = reason;
  out["choices"] = ojson::array({choice});
  out["usage"] = usage_json(a.prompt_tokens, a.completion_tokens);
  if (!a.timings.is_null()) out["timings"] = a.timings;
  out["tier"] = a.local ? "local" : "cloud";
  if (!a.route.is_null()) out["route"] = a.route;
  return out;
}

ojson StreamOut::chunk(ojson delta, ojson reason) const {
  ojson choice = {{"index", 0}};
  if (c_.g->chat) choice["delta"] = std::move(delta);
  else choice["text"] = delta.is_string() ? delta : ojson("");
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = std::move(reason);
  ojson j = {{"id", c_.id}, {"object", c_.g->chat ? "chat.completion.chunk" : "text_completion"},
             {"created", c_.created}, {"model", c_.model_id}, {"system_fingerprint", "edgellm"},
             {"choices", ojson::array({choice})}};
  if (c_.g->include_usage) j["usage"] = nullptr;
  return j;
}

ojson StreamOut::content_chunk(const std::string& s) const {
  return c_.g->chat ? chunk(ojson{{"content", s}}, nullptr) : chunk(ojson(s), nullptr);
}

bool StreamOut::raw(const std::string& s) { return sink_.write(s.data(), s.size()); }

bool StreamOut::send(const ojson& j) {
  return raw("data: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n");
}

bool StreamOut::start() {
  if (!c_.g->chat) return true;
  return send(chunk(ojson{{"role", "assistant"}, {"content", ""}}, nullptr));
}

bool StreamOut::delta(const std::string& text) {
  const std::string out = c_.g->parse_tools ? filter_.feed(text) : text;
  if (out.empty()) return alive();
  sent_text_ += out;
  return send(content_chunk(out));
}

bool StreamOut::finish(const Answer& a, const ApiError* error) {
  std::string reason = a.finish_reason;
  std::vector<ToolCall> calls;
  if (a.local && c_.g->parse_tools) calls = parse_tool_output(a.text, c_.g->tools).calls;
  if (!calls.empty()) {
    if (!send(chunk(ojson{{"tool_calls", tool_calls_json(calls, true)}}, nullptr))) return false;
    reason = "tool_calls";
  } else if (!a.local && has_calls(a.cloud_tool_calls)) {
    if (!send(chunk(ojson{{"tool_calls", cloud_calls_json(a.cloud_tool_calls, true)}}, nullptr))) return false;
    reason = "tool_calls";
  } else if (sent_text_.size() < a.text.size() && a.text.compare(0, sent_text_.size(), sent_text_) == 0) {
    // Text held back while it looked like a tool call.
    if (!send(content_chunk(a.text.substr(sent_text_.size())))) return false;
  }
  ojson last = chunk(c_.g->chat ? ojson::object() : ojson(""), reason);
  if (!a.timings.is_null()) last["timings"] = a.timings;
  last["tier"] = a.local ? "local" : "cloud";
  if (!a.route.is_null()) last["route"] = a.route;
  if (!send(last)) return false;
  if (c_.g->include_usage) {
    ojson u = {{"id", c_.id}, {"object", c_.g->chat ? "chat.completion.chunk" : "text_completion"},
               {"created", c_.created}, {"model", c_.model_id}, {"system_fingerprint", "edgellm"},
               {"choices", ojson::array()}, {"usage", usage_json(a.prompt_tokens, a.completion_tokens)}};
    if (!send(u)) return false;
  }
  if (error && !send(error->body())) return false;
  if (!raw("data: [DONE]\n\n")) return false;
  sink_.done();
  return true;
}

void StreamOut::fail(const ApiError& e, const ojson& route) {
  ojson body = e.body();
  if (!route.is_null()) body["route"] = route;
  send(body);
  raw("data: [DONE]\n\n");
  sink_.done();
}

bool StreamOut::interrupt(const std::string& message, const ojson& route) {
  ApiError e(502, message, "", "cloud_stream_interrupted");
  ojson body = e.body();
  body["restart"] = true;  // a complete replacement answer follows in this stream
  if (!route.is_null()) body["route"] = route;
  filter_ = ToolStreamFilter();
  sent_text_.clear();
  return send(body);
}

}  // namespace edgellm::server
