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
  Message null_content{"assistant", ""};
  null_content.content_kind = edgellm::chat::ContentKind::Null;
  Message parts{"user", ""};
  parts.content_kind = edgellm::chat::ContentKind::Parts;
  using V = edgellm::chat::Value;
  parts.parts = {V::object({{"type", "text"}, {"text", "a"}}), V::object({{"type", "image_url"}}),
                 V::object({{"type", "text"}, {"text", "b"}})};
  EXPECT_EQ(f.format({null_content, parts}, false),
            "<|im_start|>assistant\n<|im_end|>\n<|im_start|>user\nab<|im_end|>\n");
}

TEST(ChatML, RejectsMessageWithoutRole) {
  ChatMLFormatter f;
  EXPECT_THROW(f.format({{"", "x"}}, false), edgellm::InvalidArgument);
}
