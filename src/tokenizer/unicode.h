#pragma once
// Unicode helpers for the tokenizers: tolerant UTF-8 decoding, character classes for the
// pre-tokenizer patterns, and GPT-2's byte <-> printable code point alphabet.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/utf8.h"

namespace edgellm::tokenizer::unicode {

// Character class bits (generated table: scripts/gen-unicode-tables.py).
enum ClassFlag : uint8_t {
  kLetter = 1,      // \p{L}: Lu Ll Lt Lm Lo
  kNumber = 2,      // \p{N}: Nd Nl No
  kWhitespace = 4,  // \s: the White_Space property
  kMark = 8,        // \p{M}
  kPunct = 16,      // \p{P}
  kSymbol = 32,     // \p{S}
  kSeparator = 64,  // \p{Z}
  kControl = 128,   // Cc
};

struct ClassRun {
  uint32_t first;
  uint8_t flags;
};
extern const ClassRun kClassRuns[];
extern const size_t kClassRunCount;
extern const uint32_t kUnicodeVersionMajor;

// Flags of a code point; 0 for unassigned code points and for kInvalid.
uint8_t classify(uint32_t cp);
inline bool is_letter(uint32_t cp) { return classify(cp) & kLetter; }
inline bool is_number(uint32_t cp) { return classify(cp) & kNumber; }
inline bool is_whitespace(uint32_t cp) { return classify(cp) & kWhitespace; }

// Finer categories (generated table: scripts/gen-unicode-detail-tables.py): letter cases for
// patterns such as tekken's, Mn for BERT's accent stripping, Cf/Co/Cs for BERT's cleaning.
enum DetailFlag : uint8_t { kLu = 1, kLl = 2, kLt = 4, kLm = 8, kLo = 16, kMn = 32, kFormatOrPrivate = 64 };
extern const ClassRun kDetailRuns[];
extern const size_t kDetailRunCount;
uint8_t detail(uint32_t cp);  // 0 outside those categories and for kInvalid

// A code point and what it maps to (up to 4 code points, zero-padded).
struct CodeMapping {
  uint32_t cp;
  uint32_t to[4];
};
extern const CodeMapping kLower[];
extern const size_t kLowerCount;
extern const CodeMapping kNfd[];
extern const size_t kNfdCount;
// Appends the full lowercase of one code point (no context: final sigma is plain sigma).
void append_lower(uint32_t cp, std::vector<uint32_t>& out);
// Appends the canonical decomposition of one code point (Hangul syllables included). Canonical
// reordering of combining marks is not applied.
void append_nfd(uint32_t cp, std::vector<uint32_t>& out);

// Marks a byte that is not part of a well-formed UTF-8 sequence. It is outside the code point
// range, so it belongs to no class (neither letter, number nor whitespace).
constexpr uint32_t kInvalid = 0xFFFFFFFFu;

// One decoded unit of the input: a code point (or kInvalid for a stray byte) and the byte span
// it came from. Invalid input decodes one byte at a time, so spans always tile the input.
struct CodeUnit {
  uint32_t cp;
  uint32_t offset;
  uint32_t len;
};

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if s[i] starts no complete,
// well-formed sequence (overlongs, surrogates, > U+10FFFF and truncated sequences count as bad).
size_t utf8_valid_len(std::string_view s, size_t i, uint32_t* cp_out = nullptr);
// Scans the sequence starting at s[i]: returns how many bytes form a consistent prefix of a
// well-formed sequence (0 if s[i] cannot start one) and sets *need to the full length that
// sequence must have (0 for a bad lead byte). Complete and well-formed iff result == *need > 0.
size_t utf8_scan(std::string_view s, size_t i, size_t* need, uint32_t* cp_out = nullptr);
std::vector<CodeUnit> decode_utf8(std::string_view s);
using edgellm::append_utf8;

// GPT-2 byte-level alphabet: each byte maps to a printable code point (printable Latin-1 bytes
// map to themselves, the other 68 to U+0100 upwards in byte order).
uint32_t byte_to_cp(uint8_t b);
// Inverse; returns -1 for code points outside the alphabet.
int cp_to_byte(uint32_t cp);
// UTF-8 text of the byte-level code point for `b` (what appears in the vocabulary).
const std::string& byte_to_piece(uint8_t b);

// Replaces each ill-formed part of `s` with U+FFFD, one per maximal ill-formed subpart (the
// Unicode "best practice" that Python's errors="replace" also follows).
std::string sanitize_utf8(std::string_view s);

}  // namespace edgellm::tokenizer::unicode
