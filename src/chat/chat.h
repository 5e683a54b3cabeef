#pragma once
// Turns a conversation into the prompt text a model was trained on.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gguf.h"

namespace edgellm::chat {

// One message in OpenAI's shape: role, content, optional name / tool_calls / tool_call_id.
struct Message {
  std::string role;
  std::string content;
  nlohmann::json extra = nlohmann::json::object();  // tool_calls, tool_call_id, name, ...
};

class ChatFormatter {
 public:
  virtual ~ChatFormatter() = default;
  // tools: OpenAI tool definitions array, or null.
  virtual std::string format(const std::vector<Message>& messages, bool add_generation_prompt,
                             const nlohmann::json& tools = nullptr) const = 0;
  // Extra stop strings the template implies (e.g. "<|im_end|>").
  virtual std::vector<std::string> stop_strings() const { return {}; }
};

// The model's own template (tokenizer.chat_template) when present, ChatML otherwise.
// bos/eos token strings come from the vocabulary.
std::unique_ptr<ChatFormatter> make_formatter(const io::GgufFile& file, const std::string& bos_token,
                                              const std::string& eos_token);

}  // namespace edgellm::chat
