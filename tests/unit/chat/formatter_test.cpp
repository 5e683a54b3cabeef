// JinjaFormatter / make_formatter: variables passed like transformers, stop strings, and the
// GGUF path (template present -> Jinja, absent -> ChatML).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "chat/chat.h"
#include "io/gguf.h"

using namespace edgellm::chat;

TEST(JinjaFormatter, RendersWithTransformersVariables) {
  auto f = make_jinja_formatter(
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
      "{% if tools is none %}(no tools){% else %}{{ tools|length }}{% endif %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}{# <|im_end|> #}",
      "<s>", "</s>");
  EXPECT_EQ(f->format({{"user", "hi"}}, true), "<s>[user:hi](no tools)<|im_start|>assistant\n");
  const Value tools = Value::array({Value::object({{"type", "function"}})});
  EXPECT_EQ(f->format({{"user", "hi"}}, false, tools), "<s>[user:hi]1");
  auto stops = f->stop_strings();
  EXPECT_NE(std::find(stops.begin(), stops.end(), "</s>"), stops.end());
  EXPECT_NE(std::find(stops.begin(), stops.end(), "<|im_end|>"), stops.end()) << "marker in template";
}

// Typed messages reach the template as transformers passes OpenAI's dicts: keys in OpenAI's
// order, only those the message has, tool calls nested under "function", other keys last.
TEST(JinjaFormatter, MessagesAsTemplatesSeeThem) {
  auto f = make_jinja_formatter("{{ messages }}|{{ messages[1].tool_calls[0].function|tojson }}|{{ tools }}", "", "");
  Message call{"assistant", ""};
  call.content_kind = ContentKind::Null;
  call.tool_calls.push_back({"c1", "function", "f", Value::object({{"b", Value::integer(1)}, {"a", Value::array({Value::number(1.5), Value(), Value::boolean(true)})}})});
  Message result{"tool", "42"};
  result.name = "f";
  result.tool_call_id = "c1";
  Message extra{"assistant", "x"};
  extra.extra = {{"reasoning_content", "r"}};
  Message absent{"user", ""};
  absent.content_kind = ContentKind::Absent;
  EXPECT_EQ(f->format({{"system", "s"}, call, result, extra, absent}, false, Value::array()),
            "[{'role': 'system', 'content': 's'}, "
            "{'role': 'assistant', 'content': None, 'tool_calls': [{'id': 'c1', 'type': 'function', "
            "'function': {'name': 'f', 'arguments': {'b': 1, 'a': [1.5, None, True]}}}]}, "
            "{'role': 'tool', 'content': '42', 'name': 'f', 'tool_call_id': 'c1'}, "
            "{'role': 'assistant', 'content': 'x', 'reasoning_content': 'r'}, {'role': 'user'}]"
            "|{\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": [1.5, null, true]}}|[]");
}

TEST(JinjaFormatter, TemplateErrorsSurfaceAsEdgellmError) {
  EXPECT_THROW(make_jinja_formatter("{% if %}", "", ""), edgellm::Error);
  auto f = make_jinja_formatter("{{ raise_exception('no system role') }}", "", "");
  try {
    f->format({{"system", "x"}}, false);
    FAIL() << "expected an error";
  } catch (const edgellm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no system role"), std::string::npos);
  }
}

TEST(MakeFormatter, SmolLM2TemplateInjectsDefaultSystemPrompt) {
  const char* dir = std::getenv("EDGELLM_MODEL_DIR");
  std::string path = std::string(dir ? dir : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") +
                                                 "/.cache/edgellm/models") +
                     "/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not downloaded: " << path;
  auto file = edgellm::io::GgufFile::open(path);
  auto f = make_formatter(*file, "<|im_start|>", "<|im_end|>");
  // The template's own text (printed with the gguf Python package): a default system prompt
  // when the conversation has none, then ChatML.
  EXPECT_EQ(f->format({{"user", "Hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
            "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f->format({{"system", "S"}, {"user", "Hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(f->stop_strings().front(), "<|im_end|>");
}
