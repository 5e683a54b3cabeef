// The code-point regex used for HF split patterns: syntax subset and Oniguruma semantics.
#include <gtest/gtest.h>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

std::vector<uint32_t> cps(std::string_view s) {
  std::vector<uint32_t> out;
  for (const auto& u : unicode::decode_utf8(s)) out.push_back(u.cp);
  return out;
}

// All matches, as find_iter would give them, each as "begin:end" in code points.
std::string matches(const char* pattern, std::string_view text) {
  const Regex re(pattern);
  const auto c = cps(text);
  std::string out;
  Regex::Match m;
  for (size_t pos = 0; re.find(c, pos, c.size(), &m); pos = m.end)
    out += (out.empty() ? "" : " ") + std::to_string(m.begin) + ":" + std::to_string(m.end);
  return out;
}

TEST(Regex, AlternativesAreLeftmostFirstNotLongest) {
  EXPECT_EQ(matches("a|ab", "ab"), "0:1");
  EXPECT_EQ(matches("ab|a", "ab"), "0:2");
  EXPECT_EQ(matches("x", "axbx"), "1:2 3:4");
}

TEST(Regex, QuantifiersAreGreedyAndBacktrack) {
  EXPECT_EQ(matches("\\p{N}{1,3}", "1234567"), "0:3 3:6 6:7");
  EXPECT_EQ(matches("a+ab", "aaab"), "0:4");
  EXPECT_EQ(matches("a*b", "b"), "0:1");
  EXPECT_EQ(matches("a{2}", "aaaaa"), "0:2 2:4");
  EXPECT_EQ(matches("a?", "bbb"), "");  // empty matches split nothing
}

TEST(Regex, ClassesAndProperties) {
  EXPECT_EQ(matches("[^\\s\\p{L}\\p{N}]+", "ab, 1!?"), "2:3 5:7");
  EXPECT_EQ(matches("[a-c]+", "xabcdx"), "1:4");
  // Literal ( | ) inside a class, and a nested class adds its members (Oniguruma).
  EXPECT_EQ(matches("[^(\\s|[.,])]+", "ab(c|d).e f,g"), "0:2 3:4 5:6 8:9 10:11 12:13");
  EXPECT_EQ(matches("\\p{Lu}+", "abCDe\xC3\x89"), "2:4 5:6");  // É is Lu
  EXPECT_EQ(matches("\\p{Ll}", "A\xC3\xA9"), "1:2");
  EXPECT_EQ(matches("[\\p{P}!-/:-@\\[-`{-~]+", "a+b-$x"), "1:2 3:5");
}

TEST(Regex, LookaheadAndEnd) {
  EXPECT_EQ(matches("\\s+(?!\\S)", "a   b"), "1:3");
  EXPECT_EQ(matches("a(?=b)", "acab"), "2:3");
  EXPECT_EQ(matches("\\s+$", "a  b  "), "4:6");
  EXPECT_EQ(matches("\\s+$", "a  \nb"), "1:3");  // Ruby-syntax $ also matches before \n
}

TEST(Regex, CaseInsensitiveGroups) {
  EXPECT_EQ(matches("(?i:'s|'ll)", "'S 'Ll 's \xC5\xBF"), "0:2 3:6 7:9");
  EXPECT_EQ(matches("'(?i:s)", "'\xC5\xBF"), "0:2");  // long s folds to s
  EXPECT_EQ(matches("(?:ab)?c", "abc c"), "0:3 4:5");
}

TEST(Regex, UnsupportedSyntaxIsAClearError) {
  for (const char* bad : {"(", "a)", "[a", "a{2", "\\q", "(a)+", "a+?", "[z-a]", "\\p{Xx}", ".", "\\d"})
    EXPECT_THROW(Regex{bad}, InvalidArgument) << bad;
}

TEST(Regex, LongRunsDoNotRecurseDeeply) {
  // A million spaces: greedy runs iterate, and the failed-run memo keeps \s+$ linear.
  const std::vector<uint32_t> spaces(1000000, ' ');
  std::vector<uint32_t> text = spaces;
  text.push_back('x');
  const Regex trailing("\\s+$"), run("\\s+(?!\\S)");
  Regex::Match m;
  EXPECT_FALSE(trailing.find(text, 0, text.size(), &m));
  ASSERT_TRUE(run.find(text, 0, text.size(), &m));
  EXPECT_EQ(m.end, spaces.size() - 1);
}

}  // namespace
}  // namespace edgellm::tokenizer
