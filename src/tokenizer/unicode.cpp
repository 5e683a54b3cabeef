#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace edgellm::tokenizer::unicode {

uint8_t classify(uint32_t cp) {
  if (cp > 0x10FFFF) return 0;
  // Last run whose first code point is <= cp.
  const ClassRun* end = kClassRuns + kClassRunCount;
  const ClassRun* it = std::upper_bound(kClassRuns, end, cp,
                                        [](uint32_t v, const ClassRun& r) { return v < r.first; });
  return (it - 1)->flags;
}

namespace {

const CodeMapping* find_mapping(const CodeMapping* table, size_t n, uint32_t cp) {
  const CodeMapping* end = table + n;
  const CodeMapping* it =
      std::lower_bound(table, end, cp, [](const CodeMapping& m, uint32_t v) { return m.cp < v; });
  return it != end && it->cp == cp ? it : nullptr;
}

void append_mapped(const CodeMapping* table, size_t n, uint32_t cp, std::vector<uint32_t>& out) {
  const CodeMapping* m = find_mapping(table, n, cp);
  if (!m) {
    out.push_back(cp);
    return;
  }
  for (uint32_t c : m->to)
    if (c) out.push_back(c);
}

}  // namespace

uint8_t detail(uint32_t cp) {
  if (cp > 0x10FFFF) return 0;
  const ClassRun* end = kDetailRuns + kDetailRunCount;
  const ClassRun* it = std::upper_bound(kDetailRuns, end, cp,
                                        [](uint32_t v, const ClassRun& r) { return v < r.first; });
  return (it - 1)->flags;
}

void append_lower(uint32_t cp, std::vector<uint32_t>& out) { append_mapped(kLower, kLowerCount, cp, out); }

void append_nfd(uint32_t cp, std::vector<uint32_t>& out) {
  // Hangul syllables decompose algorithmically into two or three conjoining jamo (Unicode 3.12).
  constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr uint32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  append_mapped(kNfd, kNfdCount, cp, out);
}

namespace {

// Scans the UTF-8 sequence that starts at s[i]. Returns how many bytes form a consistent
// prefix of a well-formed sequence (0 if s[i] cannot start one) and sets *need to the length
// a complete sequence with this lead byte has. Second-byte limits exclude overlongs,
// surrogates and code points above U+10FFFF (Unicode Table 3-7).
size_t scan_impl(std::string_view s, size_t i, size_t* need, uint32_t* cp_out) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *need = 1;
    if (cp_out) *cp_out = b0;
    return 1;
  }
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    *need = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    *need = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    *need = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *need = 0;
    return 0;
  }
  size_t n = 1;
  while (n < *need && i + n < s.size()) {
    const auto b = static_cast<uint8_t>(s[i + n]);
    if (b < lo || b > hi) break;
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80;
    hi = 0xBF;
    ++n;
  }
  if (cp_out) *cp_out = cp;
  return n;
}

}  // namespace

size_t utf8_scan(std::string_view s, size_t i, size_t* need, uint32_t* cp_out) {
  if (i >= s.size()) {
    *need = 0;
    return 0;
  }
  return scan_impl(s, i, need, cp_out);
}

size_t utf8_valid_len(std::string_view s, size_t i, uint32_t* cp_out) {
  if (i >= s.size()) return 0;
  size_t need = 0;
  uint32_t cp = 0;
  const size_t n = scan_impl(s, i, &need, &cp);
  if (need == 0 || n != need) return 0;
  if (cp_out) *cp_out = cp;
  return n;
}

std::vector<CodeUnit> decode_utf8(std::string_view s) {
  std::vector<CodeUnit> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    const size_t n = utf8_valid_len(s, i, &cp);
    if (n == 0) {
      out.push_back({kInvalid, static_cast<uint32_t>(i), 1});
      ++i;
    } else {
      out.push_back({cp, static_cast<uint32_t>(i), static_cast<uint32_t>(n)});
      i += n;
    }
  }
  return out;
}


namespace {

struct ByteAlphabet {
  std::array<uint32_t, 256> cp{};
  std::array<std::string, 256> piece;
  std::array<int16_t, 256 + 68> byte_of;  // inverse of cp, -1 outside the alphabet
  ByteAlphabet() {
    byte_of.fill(-1);
    // Bytes that are printable Latin-1 keep their value; the rest take U+0100.. in order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      append_utf8(piece[b], cp[b]);
      byte_of[cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

uint32_t byte_to_cp(uint8_t b) { return alphabet().cp[b]; }

int cp_to_byte(uint32_t cp) {
  return cp < alphabet().byte_of.size() ? alphabet().byte_of[cp] : -1;
}

const std::string& byte_to_piece(uint8_t b) { return alphabet().piece[b]; }

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t need = 0;
    const size_t n = scan_impl(s, i, &need, nullptr);
    if (need != 0 && n == need) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += n == 0 ? 1 : n;  // a truncated but consistent prefix is one maximal subpart
    }
  }
  return out;
}

}  // namespace edgellm::tokenizer::unicode
