// The model's own chat template, rendered with the variables transformers passes.
#include "chat/chat.h"
#include "chat/jinja.h"

namespace edgellm::chat {

namespace {

// A message as transformers hands it to a template: a dict in OpenAI's key order, holding
// only the keys the message has.
jinja::Value message_value(const Message& m) {
  jinja::Value d = jinja::Value::make_dict();
  auto put = [&](const char* k, jinja::Value v) { d.dict->items.emplace_back(jinja::Value::string(k), std::move(v)); };
  put("role", jinja::Value::string(m.role));
  switch (m.content_kind) {
    case ContentKind::Text: put("content", jinja::Value::string(m.content)); break;
    case ContentKind::Null: put("content", jinja::Value::none()); break;
    case ContentKind::Parts: put("content", jinja::from_json(Value::array(m.parts))); break;
    case ContentKind::Absent: break;
  }
  if (!m.name.empty()) put("name", jinja::Value::string(m.name));
  if (!m.tool_call_id.empty()) put("tool_call_id", jinja::Value::string(m.tool_call_id));
  if (!m.tool_calls.empty()) {
    std::vector<jinja::Value> calls;
    for (const auto& c : m.tool_calls)
      calls.push_back(jinja::from_json(Value::object(
          {{"id", c.id}, {"type", c.type}, {"function", Value::object({{"name", c.name}, {"arguments", c.arguments}})}})));
    put("tool_calls", jinja::Value::make_list(std::move(calls)));
  }
  for (const auto& [k, v] : m.extra) put(k.c_str(), jinja::from_json(v));
  return d;
}

class JinjaFormatter : public ChatFormatter {
 public:
  JinjaFormatter(const std::string& source, std::string bos, std::string eos)
      : tmpl_(source), bos_(std::move(bos)), eos_(std::move(eos)) {
    // End-of-turn markers the template writes after each message; the model emits them too.
    static const char* kMarkers[] = {"<|im_end|>",  "<end_of_turn>", "<|eot_id|>",
                                     "<|eom_id|>",  "<|end|>",       "<|END_OF_TURN_TOKEN|>",
                                     "<|endoftext|>", "<｜end▁of▁sentence｜>"};
    if (!eos_.empty()) stops_.push_back(eos_);
    for (const char* m : kMarkers)
      if (source.find(m) != std::string::npos && m != eos_) stops_.push_back(m);
  }

  std::string format(const std::vector<Message>& messages, bool add_generation_prompt,
                     const Value& tools) const override {
    // Same variables as transformers' apply_chat_template: tools and documents are None when
    // absent (so `tools is defined` holds but `tools is none` too).
    jinja::Value vars = jinja::Value::make_dict();
    auto put = [&](const char* k, jinja::Value v) { vars.dict->set(jinja::Value::string(k), std::move(v)); };
    std::vector<jinja::Value> msgs;
    msgs.reserve(messages.size());
    for (const auto& m : messages) msgs.push_back(message_value(m));
    put("messages", jinja::Value::make_list(std::move(msgs)));
    put("tools", jinja::from_json(tools));  // null: None
    put("documents", jinja::Value::none());
    put("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
    put("bos_token", jinja::Value::string(bos_));
    put("eos_token", jinja::Value::string(eos_));
    return tmpl_.render(vars);
  }

  std::vector<std::string> stop_strings() const override { return stops_; }

 private:
  jinja::Template tmpl_;
  std::string bos_, eos_;
  std::vector<std::string> stops_;
};

}  // namespace

std::unique_ptr<ChatFormatter> make_jinja_formatter(const std::string& template_source,
                                                    const std::string& bos_token,
                                                    const std::string& eos_token) {
  return std::make_unique<JinjaFormatter>(template_source, bos_token, eos_token);
}

}  // namespace edgellm::chat
