// server::messages_from_json: OpenAI's message objects become chat::Message with nothing lost
// that a template could read, and back.
#include <gtest/gtest.h>

#include "server/chat_json.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

TEST(ChatJson, TypedFieldsAndRoundTrip) {
  const ojson in = ojson::parse(R"([
    {"role": "system", "content": "s"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "f", "arguments": {"b": 1, "a": [1.5, null, true, 18446744073709551615]}}}]},
    {"role": "tool", "content": "42", "name": "f", "tool_call_id": "c1"},
    {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    {"role": "assistant", "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
     "reasoning_content": "why"}
  ])");
  const auto m = messages_from_json(in);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].content, "s");
  EXPECT_EQ(m[1].content_kind, chat::ContentKind::Null);
  ASSERT_EQ(m[1].tool_calls.size(), 1u);
  EXPECT_EQ(m[1].tool_calls[0].id, "c1");
  EXPECT_EQ(m[1].tool_calls[0].name, "f");
  const chat::Value* a = m[1].tool_calls[0].arguments.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 4u);
  EXPECT_EQ(a->items[3].type, chat::Value::Type::Float);  // beyond int64
  EXPECT_EQ(m[1].tool_calls[0].arguments.fields[0].first, "b");  // order kept
  EXPECT_EQ(m[2].name, "f");
  EXPECT_EQ(m[2].tool_call_id, "c1");
  EXPECT_EQ(m[3].content_kind, chat::ContentKind::Parts);
  EXPECT_EQ(chat::message_texts(m[3]), std::vector<std::string>{"hi"});
  EXPECT_EQ(m[4].content_kind, chat::ContentKind::Absent);
  EXPECT_TRUE(m[4].tool_calls[0].arguments.is_string());  // OpenAI's string form kept as a string
  ASSERT_EQ(m[4].extra.size(), 1u);
  EXPECT_EQ(m[4].extra[0].first, "reasoning_content");
  // Back to JSON: the same objects (the unsigned beyond int64 comes back as a float).
  for (size_t i : {0, 2, 3, 4}) EXPECT_EQ(message_to_json(m[i]), in[i]) << i;
  EXPECT_EQ(message_to_json(m[1])["tool_calls"][0]["function"]["arguments"]["b"], 1);
}

TEST(ChatJson, OtherShapesAreKeptAsGiven) {
  // Tool calls without id/type (HF's shorthand) and a non-string name are not typed, but reach
  // templates unchanged through extra.
  const ojson in = ojson::parse(R"([{"role": "assistant", "content": "", "name": 5,
    "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}])");
  const auto m = messages_from_json(in);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].tool_calls.empty());
  EXPECT_TRUE(m[0].name.empty());
  ASSERT_EQ(m[0].extra.size(), 2u);
  EXPECT_EQ(m[0].extra[0].first, "name");
  EXPECT_EQ(m[0].extra[1].first, "tool_calls");
  EXPECT_EQ(message_to_json(m[0]), in[0]);
}

TEST(ChatJson, BadShapesAreInvalidArguments) {
  EXPECT_THROW(messages_from_json(ojson::object()), InvalidArgument);
  EXPECT_THROW(messages_from_json(ojson::parse(R"([{"content": "x"}])")), InvalidArgument);
  EXPECT_THROW(messages_from_json(ojson::parse(R"(["hi"])")), InvalidArgument);
  try {
    messages_from_json(ojson::parse(R"([{"role": "user", "content": "a"}, {"role": "user", "content": 3}])"));
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("messages[1].content"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(messages_from_json(ojson::array()).empty());
}

}  // namespace
}  // namespace edgellm::server
