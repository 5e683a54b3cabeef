// Built-in family templates used when a GGUF carries none.
#include <gtest/gtest.h>

#include <algorithm>

#include "chat/builtin_templates.h"
#include "chat/chat.h"

namespace edgellm::chat {
namespace {

TEST(BuiltinTemplates, GemmaTurnFormat) {
  auto tmpl = builtin_template("gemma3");
  ASSERT_TRUE(tmpl.has_value());
  auto f = make_jinja_formatter(*tmpl, "<bos>", "<eos>");
  const std::vector<Message> msgs = {{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello!"},
                                     {"user", "Name a fruit."}};
  EXPECT_EQ(f->format(msgs, true),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nName a fruit.<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(f->format({{"user", "x"}}, false), "<bos><start_of_turn>user\nx<end_of_turn>\n");
  const auto stops = f->stop_strings();
  EXPECT_NE(std::find(stops.begin(), stops.end(), "<end_of_turn>"), stops.end());
}

TEST(BuiltinTemplates, OtherFamiliesHaveNone) {
  EXPECT_FALSE(builtin_template("llama").has_value());
  EXPECT_FALSE(builtin_template("").has_value());
}

}  // namespace
}  // namespace edgellm::chat
