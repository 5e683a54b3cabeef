#pragma once
// Turns a conversation into the prompt text a model was trained on.
#include <memory>
#include <string>
#include <vector>

#include "chat/message.h"
#include "io/gguf.h"

namespace edgellm::chat {

// A rendered prompt and where the messages' own text lies in it.
struct RenderedPrompt {
  std::string text;
  // Byte ranges [first, second) of message text (content strings and text parts), sorted.
  std::vector<std::pair<size_t, size_t>> message_spans;
  // False when the template changed message text (trimmed it, cut reasoning out, ...), so its
  // position could not be established; message_spans is then empty.
  bool spans_known = true;
};

class ChatFormatter {
 public:
  virtual ~ChatFormatter() = default;
  // tools: OpenAI tool definitions (an array), or null for none.
  virtual std::string format(const std::vector<Message>& messages, bool add_generation_prompt,
                             const Value& tools = {}) const = 0;
  // format, plus the spans of message text, so a tokenizer can parse control tokens in the
  // template's text but not in what users wrote. Found by rendering a second time with a
  // marker in place of each text and checking that putting the texts back reproduces the
  // real rendering byte for byte; otherwise spans_known is false.
  RenderedPrompt format_protected(const std::vector<Message>& messages, bool add_generation_prompt,
                                  const Value& tools = {}) const;
  // Extra stop strings the template implies (e.g. "<|im_end|>").
  virtual std::vector<std::string> stop_strings() const { return {}; }
};

// "<|im_start|>role\ncontent<|im_end|>\n" per message, "<|im_start|>assistant\n" to prompt.
class ChatMLFormatter : public ChatFormatter {
 public:
  std::string format(const std::vector<Message>& messages, bool add_generation_prompt,
                     const Value& tools = {}) const override;
  std::vector<std::string> stop_strings() const override { return {"<|im_end|>"}; }
};

// Renders a Jinja chat template the way HF transformers' apply_chat_template does
// (trim_blocks, lstrip_blocks, transformers' tojson / raise_exception / strftime_now).
// Throws edgellm::Error with line and column if the template does not parse.
std::unique_ptr<ChatFormatter> make_jinja_formatter(const std::string& template_source,
                                                    const std::string& bos_token,
                                                    const std::string& eos_token);

// The model's own template (tokenizer.chat_template) when present, ChatML otherwise.
// bos/eos token strings come from the vocabulary.
std::unique_ptr<ChatFormatter> make_formatter(const io::GgufFile& file, const std::string& bos_token,
                                              const std::string& eos_token);

}  // namespace edgellm::chat
