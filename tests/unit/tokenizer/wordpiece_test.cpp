// WordPiece ("bert") tokenization: BERT's normalizer and word splitting on hand-worked cases,
// and the model on llama.cpp's bge vocabulary (lowercased, "\u2581"-prefixed word pieces).
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/bert_normalize.h"
#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

using namespace testing;

std::vector<std::string> words(std::string_view text, BertOptions o = {}) {
  std::vector<std::string> out;
  for (const auto& w : bert_words(text, o)) {
    std::string s;
    for (uint32_t cp : w) unicode::append_utf8(s, cp);
    out.push_back(s);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(BertNormalize, LowercasesStripsAccentsAndSplitsPunctuation) {
  EXPECT_EQ(words("Héllo, WORLD!"), (V{"hello", ",", "world", "!"}));
  EXPECT_EQ(words("Fu\xCC\x88hrer"), (V{"fuhrer"}));            // decomposed input too
  EXPECT_EQ(words("\xC4\xB0stanbul"), (V{"istanbul"}));         // U+0130 -> I + U+0307 (Mn)
  EXPECT_EQ(words("a+b$c"), (V{"a", "+", "b", "$", "c"}));      // ASCII symbols count as punctuation
  // Cased vocabularies keep case and accents.
  EXPECT_EQ(words("Héllo", {false, false}), (V{"Héllo"}));
}

TEST(BertNormalize, CleansControlsAndIsolatesIdeographs) {
  // Controls and format characters vanish (ZWJ, soft hyphen, U+000B); \t \n \r separate words.
  EXPECT_EQ(words("a\xE2\x80\x8D" "b\xC2\xAD" "c\x0B" "d\te\nf"), (V{"abcd", "e", "f"}));
  EXPECT_EQ(words("\xE4\xBD\xA0\xE5\xA5\xBD" "ab"), (V{"\xE4\xBD\xA0", "\xE5\xA5\xBD", "ab"}));
  // Hiragana is not a "Chinese character"; Devanagari's vowel sign (Mc) survives stripping.
  EXPECT_EQ(words("\xE3\x81\x82\xE3\x81\x84"), (V{"\xE3\x81\x82\xE3\x81\x84"}));
  EXPECT_EQ(words("\xE0\xA4\x95\xE0\xA4\xBF"), (V{"\xE0\xA4\x95\xE0\xA4\xBF"}));
  EXPECT_EQ(words("a\xD7\x8B" "b"), (V{"a\xD7\x8B" "b"}));  // unassigned U+05CB stays (HF)
  EXPECT_EQ(words("  \xFF x "), (V{"x"}));  // invalid bytes are dropped like U+FFFD
  EXPECT_EQ(words(""), V{});
}

class WordPiece : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = vocab_path("ggml-vocab-bert-bge.gguf");
    EDGELLM_REQUIRE_FILE(path);
    l_ = load(path);
  }
  int32_t id(const char* piece) const { return l_.tok->find_token(piece).value_or(-1); }
  std::vector<int32_t> enc(std::string_view text, bool special = false) const {
    return l_.tok->encode(text, special, false);
  }
  Loaded l_;
};

TEST_F(WordPiece, LongestPiecesFromTheLeftWithContinuations) {
  // "unaffable": the classic example; word-initial pieces carry U+2581, continuations do not.
  EXPECT_EQ(enc("unaffable"), (std::vector<int32_t>{id("\xE2\x96\x81una"), id("ffa"), id("ble")}));
  EXPECT_EQ(l_.tok->decode(enc("Unaffable, isn't it?")), "unaffable , isn ' t it ?");  // no WordPiece-decoder cleanup
}

TEST_F(WordPiece, UnknownWordsAreOneUnk) {
  const int32_t unk = id("[UNK]");
  ASSERT_GE(unk, 0);
  // U+2603 (snowman) is not in the vocabulary: the whole word becomes [UNK], its neighbours stay.
  EXPECT_EQ(enc("ab\xE2\x98\x83" "cd ok"), (std::vector<int32_t>{unk, id("\xE2\x96\x81ok")}));
  EXPECT_EQ(enc(std::string(101, 'a')), (std::vector<int32_t>{unk}));  // over 100 characters
  EXPECT_EQ(enc(std::string(100, 'a')).size() > 1, true);
}

TEST_F(WordPiece, ClsAndSepWithSpecialTokens) {
  const auto ids = enc("hello", true);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.front(), id("[CLS]"));
  EXPECT_EQ(ids.back(), id("[SEP]"));
  EXPECT_EQ(l_.tok->bos_id(), id("[CLS]"));
  EXPECT_EQ(l_.tok->decode(ids, /*skip_special=*/true), "hello");
  // [SEP] written in text is a control token only with parse_special.
  EXPECT_EQ(l_.tok->encode("a [SEP] b", false, true)[1], id("[SEP]"));
  EXPECT_NE(l_.tok->encode("a [SEP] b", false, false)[1], id("[SEP]"));
}

}  // namespace
}  // namespace edgellm::tokenizer
