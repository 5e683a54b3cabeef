// Picks the formatter for a model: its own Jinja template when it has one, else a built-in one
// for its family, else ChatML.
#include "chat/builtin_templates.h"
#include "chat/chat.h"

namespace edgellm::chat {

std::unique_ptr<ChatFormatter> make_formatter(const io::GgufFile& file, const std::string& bos_token,
                                              const std::string& eos_token) {
  auto tmpl = file.get_string("tokenizer.chat_template");
  if (tmpl && !tmpl->empty()) return make_jinja_formatter(*tmpl, bos_token, eos_token);
  if (auto builtin = builtin_template(file.get_string("general.architecture").value_or("")))
    return make_jinja_formatter(*builtin, bos_token, eos_token);
  return std::make_unique<ChatMLFormatter>();
}

}  // namespace edgellm::chat
