// The model's own chat template, rendered with the variables transformers passes.
#include "chat/chat.h"
#include "chat/jinja.h"

namespace edgellm::chat {

namespace {

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

  std::string format_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& tools) const override {
    if (!messages.is_array()) throw InvalidArgument("chat messages must be a JSON array");
    // Same variables as transformers' apply_chat_template: tools and documents are None when
    // absent (so `tools is defined` holds but `tools is none` too).
    jinja::Value vars = jinja::Value::make_dict();
    auto put = [&](const char* k, jinja::Value v) { vars.dict->set(jinja::Value::string(k), std::move(v)); };
    put("messages", jinja::from_json(messages));
    put("tools", tools.is_null() ? jinja::Value::none() : jinja::from_json(tools));
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
