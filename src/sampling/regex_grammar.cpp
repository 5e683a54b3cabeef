#include "sampling/regex_grammar.h"

#include <algorithm>
#include <utility>

#include "util/error.h"

namespace edgellm::sampling {
namespace {

using R = GrammarBuilder;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive code point ranges
constexpr uint32_t kMaxCp = 0x10FFFF;

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// How a code point is written inside a JSON string (escaped when JSON requires it).
std::string json_encoded(uint32_t cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\t': return "\\t";
    case '\r': return "\\r";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default: break;
  }
  if (cp < 0x20) {
    static const char* hex = "0123456789abcdef";
    return std::string("\\u00") + hex[cp >> 4] + hex[cp & 15];
  }
  return utf8(cp);
}

class RegexCompiler {
 public:
  RegexCompiler(GrammarBuilder& b, JsonParts& parts, const std::string& p) : b_(b), parts_(parts), p_(p) {}

  int32_t run() {
    bool anchored_start = false, anchored_end = false;
    if (!p_.empty() && p_[0] == '^') { anchored_start = true; ++i_; }
    end_ = p_.size();
    if (end_ > i_ && p_[end_ - 1] == '$' && (end_ < 2 || p_[end_ - 2] != '\\')) { anchored_end = true; --end_; }
    const int32_t body = parse_alt();
    if (i_ != end_) fail("unexpected ')'");
    R::Seq seq = {b_.byte('"')};
    const int32_t any = b_.repeat(R::ref(parts_.string_char()), 0, -1, "pattern-any");
    if (!anchored_start) seq.push_back(R::ref(any));
    seq.push_back(R::ref(body));
    if (!anchored_end) seq.push_back(R::ref(any));
    seq.push_back(b_.byte('"'));
    return b_.rule("pattern", {seq});
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw InvalidArgument("pattern '" + p_ + "': " + why + " (at offset " + std::to_string(i_) + ")");
  }
  bool more() const { return i_ < end_; }
  char peek() const { return p_[i_]; }

  int32_t parse_alt() {
    std::vector<R::Seq> alts = {parse_concat()};
    while (more() && peek() == '|') {
      ++i_;
      alts.push_back(parse_concat());
    }
    return b_.rule("pattern-alt", std::move(alts));
  }

  R::Seq parse_concat() {
    R::Seq seq;
    while (more() && peek() != '|' && peek() != ')') {
      int32_t atom = parse_atom();
      seq.push_back(parse_quantifier(atom));
    }
    return seq;
  }

  int32_t parse_quantifier(int32_t atom) {
    if (!more()) return atom;
    int lo = 1, hi = 1;
    const char c = peek();
    if (c == '*') { lo = 0; hi = -1; ++i_; }
    else if (c == '+') { lo = 1; hi = -1; ++i_; }
    else if (c == '?') { lo = 0; hi = 1; ++i_; }
    else if (c == '{') {
      const size_t save = i_++;
      auto number = [&]() {
        int v = -1;
        while (more() && peek() >= '0' && peek() <= '9') {
          v = (v < 0 ? 0 : v) * 10 + (peek() - '0');
          if (v > 100000) fail("repetition count too large");
          ++i_;
        }
        return v;
      };
      lo = number();
      if (lo < 0) { i_ = save; return atom; }  // a literal '{' would be parsed here; keep it simple
      hi = lo;
      if (more() && peek() == ',') {
        ++i_;
        hi = number();
      }
      if (!more() || peek() != '}') fail("malformed {m,n} quantifier");
      ++i_;
      if (hi >= 0 && hi < lo) fail("{m,n} with n < m");
    } else {
      return atom;
    }
    if (more() && peek() == '?') ++i_;  // lazy: same language
    return R::ref(b_.repeat(atom, lo, hi, "pattern-repeat"));
  }

  uint32_t read_utf8() {
    const auto b0 = static_cast<uint8_t>(p_[i_]);
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (n == 0 || i_ + static_cast<size_t>(n) > end_) fail("invalid UTF-8");
    uint32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(p_[i_ + static_cast<size_t>(k)]) & 0x3F);
    i_ += static_cast<size_t>(n);
    return cp;
  }

  // After a backslash: a class escape (fills ranges) or a single code point.
  Ranges parse_escape() {
    if (!more()) fail("dangling backslash");
    const char c = p_[i_++];
    auto cls = [&](Ranges r, bool neg) { return neg ? negate(r) : r; };
    switch (c) {
      case 'd': return {{'0', '9'}};
      case 'D': return cls({{'0', '9'}}, true);
      case 'w': return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
      case 'W': return cls({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}, true);
      case 's': return {{'\t', '\r'}, {' ', ' '}};
      case 'S': return cls({{'\t', '\r'}, {' ', ' '}}, true);
      case 'n': return {{'\n', '\n'}};
      case 't': return {{'\t', '\t'}};
      case 'r': return {{'\r', '\r'}};
      case 'f': return {{'\f', '\f'}};
      case 'v': return {{'\v', '\v'}};
      case 'u': {
        if (i_ + 4 > end_) fail("\\u needs 4 hex digits");
        uint32_t cp = 0;
        for (int k = 0; k < 4; ++k) {  // exactly 4 hex digits: stoul would accept signs and spaces, or throw
          const char h = p_[i_ + k];
          const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
          if (d < 0) fail("\\u needs 4 hex digits");
          cp = cp * 16 + static_cast<uint32_t>(d);
        }
        i_ += 4;
        return {{cp, cp}};
      }
      default:
        if ((c >= '0' && c <= '9') || c == 'b' || c == 'B' || c == 'k' || c == 'p' || c == 'P')
          fail(std::string("escape \\") + c + " (backreference, boundary or property) is not supported");
        return {{static_cast<uint8_t>(c), static_cast<uint8_t>(c)}};
    }
  }

  static Ranges normalise(Ranges r) {
    std::sort(r.begin(), r.end());
    Ranges out;
    for (const auto& x : r) {
      if (!out.empty() && x.first <= out.back().second + 1) out.back().second = std::max(out.back().second, x.second);
      else out.push_back(x);
    }
    return out;
  }

  static Ranges negate(Ranges r) {
    r = normalise(std::move(r));
    Ranges out;
    uint32_t next = 0;
    for (const auto& x : r) {
      if (x.first > next) out.push_back({next, x.first - 1});
      next = x.second + 1;
    }
    if (next <= kMaxCp) out.push_back({next, kMaxCp});
    return out;
  }

  int32_t parse_atom() {
    const char c = peek();
    if (c == '(') {
      ++i_;
      if (more() && peek() == '?') {
        if (i_ + 1 < end_ && p_[i_ + 1] == ':') i_ += 2;
        else fail("lookaround and named groups are not supported");
      }
      const int32_t inner = parse_alt();
      if (!more() || peek() != ')') fail("missing ')'");
      ++i_;
      return R::ref(inner);
    }
    if (c == '[') return chars(parse_class());
    if (c == '.') {
      ++i_;
      return chars(negate({{'\n', '\n'}, {'\r', '\r'}}));
    }
    if (c == '\\') {
      ++i_;
      return chars(parse_escape());
    }
    if (c == '^' || c == '$') fail("anchors are only supported at the very start and end");
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("quantifier without a target");
    const uint32_t cp = read_utf8();
    return chars({{cp, cp}});
  }

  Ranges parse_class() {
    ++i_;  // '['
    bool neg = false;
    if (more() && peek() == '^') { neg = true; ++i_; }
    Ranges r;
    bool first = true;
    while (more() && (peek() != ']' || first)) {
      first = false;
      Ranges item;
      if (peek() == '\\') { ++i_; item = parse_escape(); }
      else { const uint32_t cp = read_utf8(); item = {{cp, cp}}; }
      if (item.size() == 1 && item[0].first == item[0].second && i_ + 1 < end_ && peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi;
        if (peek() == '\\') {
          ++i_;
          const Ranges h = parse_escape();
          if (h.size() != 1 || h[0].first != h[0].second) fail("class range ends in a class escape");
          hi = h[0].first;
        } else {
          hi = read_utf8();
        }
        if (hi < item[0].first) fail("class range out of order");
        item[0].second = hi;
      }
      r.insert(r.end(), item.begin(), item.end());
    }
    if (!more()) fail("missing ']'");
    ++i_;
    if (neg) {
      for (const auto& x : r)
        if (x.second >= 0x80) fail("negated classes may only list ASCII characters");
      return negate(r);
    }
    return r;
  }

  // One JSON-encoded character from the set.
  int32_t chars(Ranges r) {
    r = normalise(std::move(r));
    ByteSet plain;  // single-byte encodings share one byte class
    std::vector<std::string> encoded;  // escapes and listed multi-byte characters
    bool all_multibyte = false;
    size_t listed = 0;
    for (const auto& [lo, hi] : r) {
      for (uint32_t cp = lo; cp <= std::min<uint32_t>(hi, 0x7F); ++cp) {
        const std::string enc = json_encoded(cp);
        if (enc.size() == 1) plain.set(static_cast<uint8_t>(enc[0]));
        else encoded.push_back(enc);
      }
      const uint32_t mlo = std::max<uint32_t>(lo, 0x80);
      if (hi < mlo) continue;
      if (mlo == 0x80 && hi >= kMaxCp) { all_multibyte = true; continue; }
      for (uint32_t cp = mlo; cp <= hi; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (++listed > 4096) fail("character class with too many non-ASCII code points");
        encoded.push_back(utf8(cp));
      }
    }
    // Alternatives start with pairwise distinct bytes (a trie of the encodings), so the rule
    // is a lazy choice: one parse per character, not one per escape.
    std::vector<R::Seq> alts = parts_.literal_alts(encoded);
    if (plain.any()) alts.push_back({b_.set(plain)});
    if (all_multibyte) parts_.utf8_multibyte(alts, ByteSet());
    else if (!r.empty() && r.back().second >= kMaxCp) fail("negated class excluding non-ASCII characters");
    if (alts.empty()) fail("empty character class");
    return R::ref(b_.rule("pattern-char", std::move(alts)));
  }

  GrammarBuilder& b_;
  JsonParts& parts_;
  const std::string& p_;
  size_t i_ = 0, end_ = 0;
};

}  // namespace

int32_t compile_pattern(GrammarBuilder& b, JsonParts& parts, const std::string& pattern) {
  return RegexCompiler(b, parts, pattern).run();
}

}  // namespace edgellm::sampling
