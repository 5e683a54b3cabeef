// ChatML: the fallback format when a model carries no chat template.
#include "chat/chat.h"
#include "util/error.h"

namespace edgellm::chat {

namespace {
// Null or absent content is empty; a list of parts gives their texts run together.
std::string content_text(const Message& m) {
  switch (m.content_kind) {
    case ContentKind::Text: return m.content;
    case ContentKind::Null:
    case ContentKind::Absent: return "";
    case ContentKind::Parts: break;
  }
  std::string out;
  for (const auto& part : m.parts) {
    if (part.is_string()) out += part.s;
    else if (const Value* t = part.find("text"); t && t->is_string()) out += t->s;
  }
  return out;
}
}  // namespace

std::string ChatMLFormatter::format(const std::vector<Message>& messages, bool add_generation_prompt,
                                    const Value& /*tools*/) const {
  std::string out;
  for (const auto& m : messages) {
    if (m.role.empty()) throw InvalidArgument("each chat message needs a role");
    out += "<|im_start|>" + m.role + "\n" + content_text(m) + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace edgellm::chat
