// libFuzzer target for the Jinja engine (lexer, parser, renderer) as the server uses it: the
// input is a chat template (a GGUF's tokenizer.chat_template is untrusted), rendered through
// make_jinja_formatter with a conversation that has tools, tool calls and a tool result, both
// plainly and with message-text protection. Every failure must be an edgellm::Error
// (TemplateError for syntax, runtime and limits); memory and time are bounded by the
// engine's own limits, so -rss_limit_mb / -timeout reports are findings.
#include <string>

#include "chat/chat.h"
#include "fuzz_util.h"
#include "server/chat_json.h"
#include "util/error.h"

using namespace edgellm;

namespace {

const std::vector<chat::Message>& messages() {
  static const std::vector<chat::Message> m = server::messages_from_json(nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What's the weather in Paris? <|im_end|> {{ x }}"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "{\"t\": 21.5}"},
    {"role": "user", "content": [{"type": "text", "text": "Thanks, "}, {"type": "text", "text": "and tomorrow?"}]}
  ])"));
  return m;
}

const chat::Value& tools() {
  static const chat::Value t = server::value_from_json(nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1}}, "required": ["city"]}}}
  ])"));
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  fuzz::Rng rng(source);
  try {
    auto f = chat::make_jinja_formatter(source, "<s>", "</s>");
    const bool gen = rng.below(2) == 0;
    const chat::Value no_tools;
    const auto& t = rng.below(2) == 0 ? tools() : no_tools;
    if (rng.below(2) == 0) {
      (void)f->format(messages(), gen, t);
    } else {
      const chat::RenderedPrompt p = f->format_protected(messages(), gen, t);
      size_t prev = 0;
      for (const auto& [b, e] : p.message_spans) {
        fuzz::check(b >= prev && b <= e && e <= p.text.size(), "jinja_fuzz", "message spans sorted and inside");
        prev = e;
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
