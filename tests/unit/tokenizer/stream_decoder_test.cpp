// StreamDecoder: never emits half a character, holds back split sequences, replaces bytes
// that can never complete with U+FFFD.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

using namespace testing;

const char* const kFffd = "\xEF\xBF\xBD";

bool valid_utf8(const std::string& s) { return unicode::sanitize_utf8(s) == s; }

class StreamDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = vocab_path("ggml-vocab-gpt-2.gguf");
    if (!exists(path)) GTEST_SKIP() << "test input not found: " << path;
    l_ = load(path);
  }
  // Token holding exactly one raw byte.
  int32_t byte_token(uint8_t b) const { return l_.tok->find_token(unicode::byte_to_piece(b)).value(); }
  Loaded l_;
};

TEST_F(StreamDecoderTest, EmojiSplitAcrossByteTokens) {
  StreamDecoder d(*l_.tok);
  EXPECT_EQ(d.push(byte_token('A')), "A");
  EXPECT_EQ(d.push(byte_token(0xF0)), "");
  EXPECT_EQ(d.push(byte_token(0x9F)), "");
  EXPECT_EQ(d.push(byte_token(0x98)), "");
  EXPECT_EQ(d.push(byte_token(0x80)), "\xF0\x9F\x98\x80");  // U+1F600
  EXPECT_EQ(d.flush(), "");
}

TEST_F(StreamDecoderTest, InvalidBytes) {
  StreamDecoder d(*l_.tok);
  // 0xFF can never start a character: replaced at once.
  EXPECT_EQ(d.push(byte_token(0xFF)), kFffd);
  // A lead byte followed by ASCII: the truncated sequence is one U+FFFD, then the ASCII.
  EXPECT_EQ(d.push(byte_token(0xE4)), "");
  EXPECT_EQ(d.push(byte_token('z')), std::string(kFffd) + "z");
  // A dangling lead byte at the end comes out at flush.
  EXPECT_EQ(d.push(byte_token(0xE4)), "");
  EXPECT_EQ(d.push(byte_token(0xB8)), "");
  EXPECT_EQ(d.flush(), kFffd);
  EXPECT_EQ(d.flush(), "");
}

TEST_F(StreamDecoderTest, ChunksAreValidAndConcatenateToDecode) {
  const std::vector<std::string> texts = {
      "emoji 👨‍👩‍👧‍👦 and 👍🏽 flags 🇯🇵", "中文字符测试，日本語のテキスト", "mixed ½ é ñ 🦄 ok",
      "\xF0\x9F\x98" "truncated then text", "lone \xFF byte"};
  for (const auto& t : texts) {
    const auto ids = l_.tok->encode(t, false, false);
    StreamDecoder d(*l_.tok);
    std::string all;
    int held = 0;
    for (int32_t id : ids) {
      const std::string chunk = d.push(id);
      EXPECT_TRUE(valid_utf8(chunk)) << t;
      held += chunk.empty();
      all += chunk;
    }
    all += d.flush();
    EXPECT_EQ(all, unicode::sanitize_utf8(l_.tok->decode(ids))) << t;
    if (t.find("中文") == 0) {
      EXPECT_GT(held, 0) << "CJK characters span several byte tokens here";
    }
  }
}

TEST(StreamDecoder, SkipsControlTokens) {
  const std::string path = model_path(kSmolLM);
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  const auto ids = l.tok->encode("<|im_start|>assistant\nHi 👋<|im_end|>", false, true);
  StreamDecoder skip(*l.tok), keep(*l.tok, /*skip_special=*/false);
  std::string a, b;
  for (int32_t id : ids) {
    a += skip.push(id);
    b += keep.push(id);
  }
  a += skip.flush();
  b += keep.flush();
  EXPECT_EQ(a, "assistant\nHi 👋");
  EXPECT_EQ(b, "<|im_start|>assistant\nHi 👋<|im_end|>");
}

}  // namespace
}  // namespace edgellm::tokenizer
