// Placeholder until the Jinja engine lands: SmolLM2's template is ChatML plus a default
// system prompt, so ChatML is the closest stand-in.
#include "chat/chat.h"

namespace edgellm::chat {

std::unique_ptr<ChatFormatter> make_jinja_formatter(const std::string&, const std::string&,
                                                    const std::string&) {
  return std::make_unique<ChatMLFormatter>();
}

}  // namespace edgellm::chat
