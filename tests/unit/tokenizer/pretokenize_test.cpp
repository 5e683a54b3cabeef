// Hand-written regex pre-tokenizers on cases worked out from the patterns by hand.
#include <gtest/gtest.h>

#include "tokenizer/pretokenize.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

std::vector<std::string> split(PreTokenizer k, std::string_view text) {
  std::vector<std::string> out;
  size_t expect = 0;
  for (const Span& s : pretokenize(k, text)) {
    EXPECT_EQ(s.offset, expect) << "spans must tile the text";
    expect = s.offset + s.len;
    out.emplace_back(text.substr(s.offset, s.len));
  }
  EXPECT_EQ(expect, text.size());
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenize, Gpt2Words) {
  EXPECT_EQ(split(PreTokenizer::kGpt2, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "I'm here, they'll'VE"),
            (V{"I", "'m", " here", ",", " they", "'ll", "'", "VE"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "abc123 45x"), (V{"abc", "123", " 45", "x"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "a...!? b"), (V{"a", "...!?", " b"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, ""), V{});
}

TEST(PreTokenize, Gpt2WhitespaceLookahead) {
  // \s+(?!\S) leaves the last space of a run for the next word.
  EXPECT_EQ(split(PreTokenizer::kGpt2, "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(split(PreTokenizer::kGpt2, "a\nb"), (V{"a", "\n", "b"}));  // \s+ fallback
  EXPECT_EQ(split(PreTokenizer::kGpt2, "end   "), (V{"end", "   "}));
  // Only U+0020 is the optional prefix space; NBSP is whitespace on its own.
  EXPECT_EQ(split(PreTokenizer::kGpt2, "x\xC2\xA0y"), (V{"x", "\xC2\xA0", "y"}));
  // A combining mark is not a letter: it ends the word and joins the "other" run.
  EXPECT_EQ(split(PreTokenizer::kGpt2, "e\xCC\x81te"), (V{"e", "\xCC\x81", "te"}));
}

TEST(PreTokenize, SmolLMIsolatesEveryDigit) {
  EXPECT_EQ(split(PreTokenizer::kSmolLM, "abc 123x"), (V{"abc", " ", "1", "2", "3", "x"}));
  // The text between digits is split on its own: the space before "1" ends its stretch.
  EXPECT_EQ(split(PreTokenizer::kSmolLM, "x 1"), (V{"x", " ", "1"}));
  EXPECT_EQ(split(PreTokenizer::kSmolLM, "\xC2\xBD!"), (V{"\xC2\xBD", "!"}));  // ½ is \p{N}
}

TEST(PreTokenize, Llama3AndQwen2) {
  EXPECT_EQ(split(PreTokenizer::kLlama3, "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split(PreTokenizer::kQwen2, "123"), (V{"1", "2", "3"}));
  EXPECT_EQ(split(PreTokenizer::kLlama3, "I'M (hello)"), (V{"I", "'M", " (", "hello", ")"}));
  EXPECT_EQ(split(PreTokenizer::kLlama3, "\thello"), (V{"\thello"}));
  EXPECT_EQ(split(PreTokenizer::kLlama3, "x;\n\ny"), (V{"x", ";\n\n", "y"}));
  EXPECT_EQ(split(PreTokenizer::kLlama3, "a  \n  b"), (V{"a", "  \n", " ", " b"}));
}

TEST(PreTokenize, InvalidBytesArePreTokensOfTheirOwn) {
  const std::string s = "ab\xFF" "cd \x80\x80 e";
  const V want = {"ab", "\xFF", "cd", " ", "\x80", "\x80", " e"};
  EXPECT_EQ(split(PreTokenizer::kGpt2, s), want);
  EXPECT_EQ(split(PreTokenizer::kGpt2, s), split(PreTokenizer::kGpt2, s));
}

TEST(PreTokenize, NamesMapToPatterns) {
  EXPECT_EQ(pre_tokenizer_from_name("smollm"), PreTokenizer::kSmolLM);
  EXPECT_EQ(pre_tokenizer_from_name("gpt-2"), PreTokenizer::kGpt2);
  EXPECT_EQ(pre_tokenizer_from_name("default"), PreTokenizer::kGpt2);
  EXPECT_EQ(pre_tokenizer_from_name("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(pre_tokenizer_from_name("deepseek-r1-qwen"), PreTokenizer::kQwen2);
  EXPECT_THROW(pre_tokenizer_from_name("klingon"), ModelFormatError);
}

}  // namespace
}  // namespace edgellm::tokenizer
