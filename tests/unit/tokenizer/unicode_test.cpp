// Character classes, UTF-8 decoding and the byte-level alphabet.
#include <gtest/gtest.h>

#include <set>

#include "tokenizer/unicode.h"

namespace edgellm::tokenizer::unicode {
namespace {

TEST(Unicode, ClassesMatchRegexSemantics) {
  EXPECT_TRUE(is_letter('a'));
  EXPECT_TRUE(is_letter(0x4E2D));    // 中 (Lo)
  EXPECT_TRUE(is_letter(0x01C5));    // ǅ (Lt)
  EXPECT_TRUE(is_letter(0x02B0));    // ʰ (Lm)
  EXPECT_FALSE(is_letter(0x0301));   // combining acute: \p{M}, not \p{L}
  EXPECT_TRUE(classify(0x0301) & kMark);
  EXPECT_FALSE(is_letter(0x0939 + 0x3E - 0x39));  // U+093E DEVANAGARI VOWEL SIGN AA is Mc
  EXPECT_TRUE(is_number('7'));
  EXPECT_TRUE(is_number(0x00BD));    // ½ (No)
  EXPECT_TRUE(is_number(0x216B));    // Ⅻ (Nl)
  EXPECT_TRUE(is_number(0x0663));    // Arabic-Indic three (Nd)
  EXPECT_FALSE(is_number('x'));
  // \s is White_Space: NBSP, ideographic space, NEL, line separator yes; U+001C..1F and
  // zero width space (Cf) no, although Python's str.isspace() accepts U+001C..1F.
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2009u,
                      0x2028u, 0x202Fu, 0x3000u})
    EXPECT_TRUE(is_whitespace(cp)) << std::hex << cp;
  for (uint32_t cp : {0x1Cu, 0x1Fu, 0x200Bu, 0x180Eu, 0xFEFFu, 0x61u})
    EXPECT_FALSE(is_whitespace(cp)) << std::hex << cp;
  EXPECT_EQ(classify(0x10FFFF), 0);  // unassigned (Cn): no class
  EXPECT_EQ(classify(kInvalid), 0);
  EXPECT_TRUE(is_letter(0x1F600) == false && (classify(0x1F600) & kSymbol));  // 😀 is So
}

TEST(Unicode, DecodeSplitsInvalidBytesOneByOne) {
  // "a", U+00E9, a stray continuation byte, a truncated 3-byte sequence, an overlong "/",
  // a surrogate, then U+1F600.
  const std::string s = "a\xC3\xA9\x80\xE2\x82" "b\xC0\xAF\xED\xA0\x80\xF0\x9F\x98\x80";
  const auto u = decode_utf8(s);
  std::vector<uint32_t> cps;
  size_t covered = 0;
  for (const auto& c : u) {
    EXPECT_EQ(c.offset, covered);
    covered += c.len;
    cps.push_back(c.cp);
  }
  EXPECT_EQ(covered, s.size());
  const std::vector<uint32_t> want = {'a',      0xE9,     kInvalid, kInvalid, kInvalid, 'b',
                                      kInvalid, kInvalid, kInvalid, kInvalid, kInvalid, 0x1F600};
  EXPECT_EQ(cps, want);
}

TEST(Unicode, SanitizeReplacesMaximalSubparts) {
  EXPECT_EQ(sanitize_utf8("ok"), "ok");
  // Truncated 3-byte sequence followed by ASCII: one U+FFFD, then the ASCII.
  EXPECT_EQ(sanitize_utf8("\xE2\x82" "A"), "\xEF\xBF\xBD" "A");
  // C0 and F5 can never start a sequence: one U+FFFD per byte.
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xF5"), "\xEF\xBF\xBD");
  // ED A0 is a surrogate lead: ED alone is a maximal subpart, then A0 and 80 separately.
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), "\xEF\xBF\xBD");
}

TEST(Unicode, ByteAlphabetIsABijectionOntoPrintableCodePoints) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_cp(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(cp_to_byte(cp), b);
    EXPECT_FALSE(is_whitespace(cp)) << b;  // pieces never contain whitespace
  }
  EXPECT_EQ(byte_to_cp(' '), 0x120u);  // 'Ġ'
  EXPECT_EQ(byte_to_cp('\n'), 0x10Au); // 'Ċ'
  EXPECT_EQ(byte_to_cp('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(byte_to_piece(' '), "\xC4\xA0");
  EXPECT_EQ(cp_to_byte(0x4E2D), -1);
}

}  // namespace
}  // namespace edgellm::tokenizer::unicode
