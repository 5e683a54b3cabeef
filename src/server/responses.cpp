#include "server/responses.h"

#include "server/logprobs_json.h"

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

namespace {

ojson choice_json(const ReplyCtx& c, const Answer& a) {
  const bool chat = c.g->chat;
  std::string reason = a.finish_reason;
  ojson choice = {{"index", a.index}};
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
    choice["text"] = c.g->echo ? c.g->prompt_text + a.text : a.text;
  }
  choice["logprobs"] = nullptr;
  if (c.g->logprobs >= 0 && a.local && c.tok) {
    const LogprobsStyle st{c.tok, c.g->tokens_as_ids};
    choice["logprobs"] = chat ? chat_logprobs_json(st, a.logprobs)
                              : completion_logprobs_json(st, c.g->echo ? c.g->prompt : std::vector<int32_t>{},
                                                         a.prompt_logprobs, a.logprobs);
  }
  choice["finish_reason"] = reason;
  return choice;
}

}  // namespace

ojson whole_json(const ReplyCtx& c, const Answer& a) { return whole_json(c, std::vector<Answer>{a}); }

ojson whole_json(const ReplyCtx& c, const std::vector<Answer>& choices) {
  const bool chat = c.g->chat;
  ojson out = {{"id", c.id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", c.created},
               {"model", c.model_id}, {"system_fingerprint", "edgellm"}};
  ojson list = ojson::array();
  int64_t completion = 0;
  for (const auto& a : choices) {
    list.push_back(choice_json(c, a));
    completion += a.completion_tokens;
  }
  const Answer& a = choices.front();
  out["choices"] = std::move(list);
  out["usage"] = usage_json(a.prompt_tokens, completion);
  if (!a.timings.is_null()) out["timings"] = a.timings;
  out["tier"] = a.local ? "local" : "cloud";
  if (!a.route.is_null()) out["route"] = a.route;
  return out;
}

void StreamOut::add_logprobs(const std::vector<sampling::PositionLogprobs>& lps) {
  pending_lps_.insert(pending_lps_.end(), lps.begin(), lps.end());
}

// The pending log-probabilities as this chunk's logprobs (null when none are asked for or due).
ojson StreamOut::take_logprobs(const std::string& text) {
  if (c_.g->logprobs < 0 || pending_lps_.empty() || !c_.tok) return nullptr;
  const LogprobsStyle st{c_.tok, c_.g->tokens_as_ids};
  ojson j;
  if (c_.g->chat) {
    j = chat_logprobs_json(st, pending_lps_);
  } else {
    j = completion_logprobs_json(st, {}, {}, pending_lps_);
    for (auto& o : j["text_offset"]) o = o.get<size_t>() + lp_offset_;
    for (char ch : text) lp_offset_ += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  }
  pending_lps_.clear();
  return j;
}

ojson StreamOut::chunk(ojson delta, ojson reason) {
  ojson choice = {{"index", index_}};
  const std::string text = c_.g->chat ? (delta.is_object() && delta.contains("content") && delta["content"].is_string()
                                             ? delta["content"].get<std::string>() : std::string())
                                      : (delta.is_string() ? delta.get<std::string>() : std::string());
  if (c_.g->chat) choice["delta"] = std::move(delta);
  else choice["text"] = delta.is_string() ? delta : ojson("");
  choice["logprobs"] = take_logprobs(text);
  choice["finish_reason"] = std::move(reason);
  ojson j = {{"id", c_.id}, {"object", c_.g->chat ? "chat.completion.chunk" : "text_completion"},
             {"created", c_.created}, {"model", c_.model_id}, {"system_fingerprint", "edgellm"},
             {"choices", ojson::array({choice})}};
  if (c_.g->include_usage) j["usage"] = nullptr;
  return j;
}

ojson StreamOut::content_chunk(const std::string& s) {
  return c_.g->chat ? chunk(ojson{{"content", s}}, nullptr) : chunk(ojson(s), nullptr);
}

bool StreamOut::raw(const std::string& s) { return sink_.write(s.data(), s.size()); }

bool StreamOut::send(const ojson& j) {
  return raw("data: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n");
}

bool StreamOut::start() {
  if (!c_.g->chat) return !c_.g->echo || send(chunk(ojson(c_.g->prompt_text), nullptr));
  return send(chunk(ojson{{"role", "assistant"}, {"content", ""}}, nullptr));
}

bool StreamOut::delta(const std::string& text) {
  const std::string out = c_.g->parse_tools ? filter_.feed(text) : text;
  if (out.empty()) return alive();
  sent_text_ += out;
  return send(content_chunk(out));
}

bool StreamOut::finish(const Answer& a, const ApiError* error) {
  return finish_choice(a) && close(a.prompt_tokens, a.completion_tokens, error);
}

bool StreamOut::finish_choice(const Answer& a) {
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
  return send(last);
}

bool StreamOut::close(int64_t prompt_tokens, int64_t completion_tokens, const ApiError* error) {
  if (c_.g->include_usage) {
    ojson u = {{"id", c_.id}, {"object", c_.g->chat ? "chat.completion.chunk" : "text_completion"},
               {"created", c_.created}, {"model", c_.model_id}, {"system_fingerprint", "edgellm"},
               {"choices", ojson::array()}, {"usage", usage_json(prompt_tokens, completion_tokens)}};
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
