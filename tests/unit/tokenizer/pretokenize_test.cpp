// Hand-written regex pre-tokenizers on cases worked out from the patterns by hand.
#include <gtest/gtest.h>

#include "tokenizer/pretokenize.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

std::vector<std::string> split(const std::string& pre, std::string_view text) {
  std::vector<std::string> out;
  size_t expect = 0;
  for (const Span& s : PreTokenizer::from_name(pre).split(text)) {
    EXPECT_EQ(s.offset, expect) << "spans must tile the text";
    expect = s.offset + s.len;
    out.emplace_back(text.substr(s.offset, s.len));
  }
  EXPECT_EQ(expect, text.size());
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenize, Gpt2Words) {
  EXPECT_EQ(split("gpt-2", "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("gpt-2", "I'm here, they'll'VE"),
            (V{"I", "'m", " here", ",", " they", "'ll", "'", "VE"}));
  EXPECT_EQ(split("gpt-2", "abc123 45x"), (V{"abc", "123", " 45", "x"}));
  EXPECT_EQ(split("gpt-2", "a...!? b"), (V{"a", "...!?", " b"}));
  EXPECT_EQ(split("gpt-2", ""), V{});
}

TEST(PreTokenize, Gpt2WhitespaceLookahead) {
  // \s+(?!\S) leaves the last space of a run for the next word.
  EXPECT_EQ(split("gpt-2", "a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(split("gpt-2", "a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(split("gpt-2", "a\nb"), (V{"a", "\n", "b"}));  // \s+ fallback
  EXPECT_EQ(split("gpt-2", "end   "), (V{"end", "   "}));
  // Only U+0020 is the optional prefix space; NBSP is whitespace on its own.
  EXPECT_EQ(split("gpt-2", "x\xC2\xA0y"), (V{"x", "\xC2\xA0", "y"}));
  // A combining mark is not a letter: it ends the word and joins the "other" run.
  EXPECT_EQ(split("gpt-2", "e\xCC\x81te"), (V{"e", "\xCC\x81", "te"}));
}

TEST(PreTokenize, SmolLMIsolatesEveryDigit) {
  EXPECT_EQ(split("smollm", "abc 123x"), (V{"abc", " ", "1", "2", "3", "x"}));
  // The text between digits is split on its own: the space before "1" ends its stretch.
  EXPECT_EQ(split("smollm", "x 1"), (V{"x", " ", "1"}));
  EXPECT_EQ(split("smollm", "\xC2\xBD!"), (V{"\xC2\xBD", "!"}));  // ½ is \p{N}
}

TEST(PreTokenize, Llama3AndQwen2) {
  EXPECT_EQ(split("llama3", "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split("qwen2", "123"), (V{"1", "2", "3"}));
  EXPECT_EQ(split("llama3", "I'M (hello)"), (V{"I", "'M", " (", "hello", ")"}));
  EXPECT_EQ(split("llama3", "\thello"), (V{"\thello"}));
  EXPECT_EQ(split("llama3", "x;\n\ny"), (V{"x", ";\n\n", "y"}));
  EXPECT_EQ(split("llama3", "a  \n  b"), (V{"a", "  \n", " ", " b"}));
}

TEST(PreTokenize, InvalidBytesArePreTokensOfTheirOwn) {
  const std::string s = "ab\xFF" "cd \x80\x80 e";
  const V want = {"ab", "\xFF", "cd", " ", "\x80", "\x80", " e"};
  EXPECT_EQ(split("gpt-2", s), want);
  EXPECT_EQ(split("gpt-2", s), split("gpt-2", s));
}

TEST(PreTokenize, DeepSeekSequenceOfSplits) {
  // Newlines alone, cased-letter runs with one leading space, punctuation runs, numbers.
  EXPECT_EQ(split("deepseek-llm", "Hello world!\n12 \xE4\xBD\xA0\xE5\xA5\xBD  "),
            (V{"Hello", " world", "!", "\n", "12", " ", "\xE4\xBD\xA0\xE5\xA5\xBD", "  "}));
  EXPECT_EQ(split("deepseek-coder", "x=12;\n"), (V{"x", "=", "1", "2", ";", "\n"}));
}

TEST(PreTokenize, FalconDigitsSeeTheByteAlphabet) {
  EXPECT_EQ(split("falcon", "a,b 1234567"), (V{"a", ",", "b", " ", "123", "456", "7"}));
  // U+043C is D0 BC; BC is the byte-level character U+00BC (a number), so HF splits it off.
  EXPECT_EQ(split("falcon", "\xD0\xBC"), (V{"\xD0", "\xBC"}));
}

TEST(PreTokenize, BloomVikingAndTekken) {
  EXPECT_EQ(split("bloom", "Hi there, you (x)."), (V{"Hi", " there", ",", " you", " (", "x", ")."}));  // gaps stay whole
  EXPECT_EQ(split("viking", "abc12"), (V{"abc", "1", "2"}));
  EXPECT_EQ(split("tekken", "HelloWorld ABCdef x/\n"), (V{"Hello", "World", " ABCdef", " x", "/\n"}));
}

TEST(PreTokenize, NamesMapToPipelines) {
  EXPECT_EQ(PreTokenizer::from_name("smollm").name(), "smollm");
  EXPECT_EQ(PreTokenizer::from_name("starcoder").name(), "smollm");
  EXPECT_EQ(PreTokenizer::from_name("").name(), "gpt-2");
  EXPECT_EQ(PreTokenizer::from_name("llama-bpe").name(), "llama3");
  EXPECT_TRUE(PreTokenizer::from_name("llama-bpe").ignore_merges());
  EXPECT_FALSE(PreTokenizer::from_name("chatglm-bpe").ignore_merges());
  EXPECT_EQ(PreTokenizer::from_name("deepseek-r1-qwen").name(), "qwen2");
  EXPECT_THROW(PreTokenizer::from_name("klingon"), ModelFormatError);
  // Every name the issue lists (llama.cpp's vocabulary files) is known.
  for (const char* n : {"gpt-2", "llama3", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder",
                        "deepseek-r1-qwen", "falcon", "mpt", "starcoder", "refact", "command-r", "smollm",
                        "chatglm-bpe", "viking", "jais", "tekken", "poro-chat", "bloom", "gpt3-finnish",
                        "exaone", "minerva-7b"})
    EXPECT_NO_THROW(PreTokenizer::from_name(n)) << n;
}

}  // namespace
}  // namespace edgellm::tokenizer
