// Picks the formatter for a model: its own Jinja template when it has one, ChatML otherwise.
#include "chat/chat.h"

namespace edgellm::chat {

std::unique_ptr<ChatFormatter> make_formatter(const io::GgufFile& file, const std::string& bos_token,
                                              const std::string& eos_token) {
  auto tmpl = file.get_string("tokenizer.chat_template");
  if (tmpl && !tmpl->empty()) return make_jinja_formatter(*tmpl, bos_token, eos_token);
  return std::make_unique<ChatMLFormatter>();
}

}  // namespace edgellm::chat
