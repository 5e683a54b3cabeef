// ChatML fallback formatter: exact prompt text and stop strings.
#include <gtest/gtest.h>

#include "chat/chat.h"

using edgellm::chat::ChatMLFormatter;
using edgellm::chat::Message;

TEST(ChatML, FormatsTurnsAndGenerationPrompt) {
  ChatMLFormatter f;
  std::vector<Message> msgs = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}};
  EXPECT_EQ(f.format(msgs, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello<|im_end|>\n");
  EXPECT_EQ(f.format({{"user", "Hi"}}, true),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(f.stop_strings(), std::vector<std::string>{"<|im_end|>"});
}

TEST(ChatML, NullAndPartsContent) {
  ChatMLFormatter f;
  nlohmann::ordered_json msgs = nlohmann::ordered_json::parse(
      R"([{"role":"assistant","content":null},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}])");
  EXPECT_EQ(f.format_json(msgs, false),
            "<|im_start|>assistant\n<|im_end|>\n<|im_start|>user\nab<|im_end|>\n");
}

TEST(ChatML, RejectsMalformedMessages) {
  ChatMLFormatter f;
  EXPECT_THROW(f.format_json(nlohmann::ordered_json::object(), false), edgellm::Error);
  EXPECT_THROW(f.format_json(nlohmann::ordered_json::parse(R"([{"content":"x"}])"), false),
               edgellm::Error);
}

TEST(ChatML, ExtraOverridesContent) {
  Message m{"assistant", "ignored", {{"content", nullptr}, {"tool_call_id", "abc"}}};
  auto j = edgellm::chat::message_to_json(m);
  EXPECT_TRUE(j["content"].is_null());
  EXPECT_EQ(j["tool_call_id"], "abc");
  EXPECT_EQ(j.begin().key(), "role");
}
