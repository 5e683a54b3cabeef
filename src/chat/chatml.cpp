// ChatML: the fallback format when a model carries no chat template.
#include "chat/chat.h"
#include "util/error.h"

namespace edgellm::chat {

nlohmann::ordered_json message_to_json(const Message& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["role"] = m.role;
  j["content"] = m.content;
  if (m.extra.is_object()) {
    for (auto it = m.extra.begin(); it != m.extra.end(); ++it) j[it.key()] = it.value();
  }
  return j;
}

std::string ChatFormatter::format(const std::vector<Message>& messages,
                                  bool add_generation_prompt, const nlohmann::json& tools) const {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& m : messages) list.push_back(message_to_json(m));
  return format_json(list, add_generation_prompt, nlohmann::ordered_json(tools));
}

namespace {
// Content may be a string, null, or OpenAI's list of {"type":"text","text":...} parts.
std::string content_text(const nlohmann::ordered_json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_null()) return "";
  if (c.is_array()) {
    std::string out;
    for (const auto& part : c) {
      if (part.is_string()) out += part.get<std::string>();
      else if (part.is_object() && part.contains("text") && part["text"].is_string())
        out += part["text"].get<std::string>();
    }
    return out;
  }
  return c.dump();
}
}  // namespace

std::string ChatMLFormatter::format_json(const nlohmann::ordered_json& messages,
                                         bool add_generation_prompt,
                                         const nlohmann::ordered_json& /*tools*/) const {
  if (!messages.is_array()) throw InvalidArgument("chat messages must be a JSON array");
  std::string out;
  for (const auto& m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw InvalidArgument("each chat message must be an object with a string \"role\"");
    out += "<|im_start|>" + m["role"].get<std::string>() + "\n";
    if (m.contains("content")) out += content_text(m["content"]);
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace edgellm::chat
