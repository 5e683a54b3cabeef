#pragma once
// Training data in OpenAI's fine-tuning chat format: one JSON object per line,
// {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}, an assistant
// message optionally with "weight": 0 (shown as context, not learned). Each conversation is
// rendered with the model's own chat template and tokenized; the loss is taken on the tokens of
// the assistant messages (their text and the template's end-of-turn after it) only.
#include <cstdint>
#include <string>
#include <vector>

#include "chat/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "util/error.h"

namespace edgellm::train {

// A data file with malformed lines; what() lists every bad line as "FILE:LINE: reason".
class DataError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

struct Conversation {
  std::vector<chat::Message> messages;
  std::vector<bool> learn;  // per message: an assistant message to learn (not "weight": 0)
  int64_t line = 0;  // 1-based line in the file
};

// Reads and checks every line (blank lines are skipped); throws DataError naming all bad lines
// (at most the first 20 listed, then a count) before anything is trained. Error if the file
// cannot be read or holds no conversation.
std::vector<Conversation> read_chat_jsonl(const std::string& path);
// The same from text already in memory (`name` is used in messages).
std::vector<Conversation> parse_chat_jsonl(const std::string& text, const std::string& name);

// Renders and tokenizes one conversation. Throws DataError when the template does not render
// the conversation as a sequence of turns (a turn's rendering is not a prefix of the whole).
Example render_conversation(const Conversation& conv, const chat::ChatFormatter& fmt,
                            const tokenizer::Tokenizer& tok);

}  // namespace edgellm::train
