#include "sampling/json_parts.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace edgellm::sampling {
namespace {

ByteSet byte_range(int lo, int hi) {
  ByteSet s;
  for (int c = lo; c <= hi; ++c) s.set(static_cast<size_t>(c));
  return s;
}

// Unescaped ASCII allowed inside a JSON string: 0x20..0x7F except '"' and '\\'.
ByteSet plain_ascii() {
  ByteSet s = byte_range(0x20, 0x7F);
  s.reset('"');
  s.reset('\\');
  return s;
}

}  // namespace

using R = GrammarBuilder;

int32_t JsonParts::ws() {
  if (ws_ >= 0) return ws_;
  ByteSet indent;
  indent.set(' ');
  indent.set('\t');
  const int32_t ind = b_.repeat(b_.set(indent), 0, 20, "ws-indent");
  ws_ = b_.rule("ws", {{}, {b_.byte(' ')}, {b_.byte('\n'), R::ref(ind)}});
  return ws_;
}

void JsonParts::utf8_multibyte(std::vector<Seq>& alts, const ByteSet& banned_lead) {
  const int32_t cont = b_.range(0x80, 0xBF);
  auto lead = [&](int lo, int hi) { return byte_range(lo, hi) & ~banned_lead; };
  auto add = [&](const ByteSet& l, Seq rest) {
    if (l.none()) return;
    Seq s = {b_.set(l)};
    s.insert(s.end(), rest.begin(), rest.end());
    alts.push_back(std::move(s));
  };
  // Exact well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF) so parsers accept it.
  add(lead(0xC2, 0xDF), {cont});
  add(lead(0xE0, 0xE0), {b_.range(0xA0, 0xBF), cont});
  add(lead(0xE1, 0xEC), {cont, cont});
  add(lead(0xED, 0xED), {b_.range(0x80, 0x9F), cont});
  add(lead(0xEE, 0xEF), {cont, cont});
  add(lead(0xF0, 0xF0), {b_.range(0x90, 0xBF), cont, cont});
  add(lead(0xF1, 0xF3), {cont, cont, cont});
  add(lead(0xF4, 0xF4), {b_.range(0x80, 0x8F), cont, cont});
}

int32_t JsonParts::string_char() {
  if (char_ >= 0) return char_;
  std::vector<Seq> alts;
  alts.push_back({b_.set(plain_ascii())});
  utf8_multibyte(alts, ByteSet());
  // Escapes; \u excludes surrogates (a lone one would make the document unparseable).
  ByteSet simple;
  for (char c : std::string("\"\\/bfnrt")) simple.set(static_cast<uint8_t>(c));
  ByteSet hex, hex_no_d;
  for (char c : std::string("0123456789abcdefABCDEF")) hex.set(static_cast<uint8_t>(c));
  hex_no_d = hex;
  hex_no_d.reset('d');
  hex_no_d.reset('D');
  ByteSet d;
  d.set('d');
  d.set('D');
  const int32_t h = b_.set(hex);
  const int32_t u = b_.rule("unicode-escape", {{b_.set(hex_no_d), h, h, h}, {b_.set(d), b_.range('0', '7'), h, h}});
  const int32_t esc = b_.rule("escape", {{b_.set(simple)}, {b_.byte('u'), R::ref(u)}});
  alts.push_back({b_.byte('\\'), R::ref(esc)});
  char_ = b_.rule("char", std::move(alts));
  return char_;
}

int32_t JsonParts::string_char_not_starting(const ByteSet& banned_first) {
  std::vector<Seq> alts;
  const ByteSet ascii = plain_ascii() & ~banned_first;
  if (ascii.any()) alts.push_back({b_.set(ascii)});
  utf8_multibyte(alts, banned_first);
  return b_.rule("char-restricted", std::move(alts));
}

int32_t JsonParts::string(int min_len, int max_len) {
  if (min_len <= 0 && max_len < 0 && str_ >= 0) return str_;
  const int32_t chars = b_.repeat(R::ref(string_char()), min_len, max_len, "chars");
  const int32_t r = b_.rule("string", {{b_.byte('"'), R::ref(chars), b_.byte('"')}});
  if (min_len <= 0 && max_len < 0) str_ = r;
  return r;
}

int32_t JsonParts::any_string() { return string(0, -1); }

int32_t JsonParts::integer() {
  if (int_ >= 0) return int_;
  const int32_t digits = b_.repeat(b_.range('0', '9'), 0, 15, "int-digits");
  const int32_t ipart = b_.rule("int-part", {{b_.byte('0')}, {b_.range('1', '9'), R::ref(digits)}});
  int_ = b_.rule("integer", {{b_.byte('-'), R::ref(ipart)}, {R::ref(ipart)}});
  return int_;
}

// Digit strings of one length between lo and hi (lexicographic = numeric order here): fix the
// common first digit, or split into lo's first digit, the digits strictly between, hi's.
int32_t JsonParts::digits_between(const std::string& lo, const std::string& hi) {
  const size_t n = lo.size();
  if (n == 0) return b_.rule("digits-empty", {{}});
  if (lo == std::string(n, '0') && hi == std::string(n, '9'))
    return b_.repeat(b_.range('0', '9'), static_cast<int>(n), static_cast<int>(n), "digits");
  const auto d0 = static_cast<uint8_t>(lo[0]), d1 = static_cast<uint8_t>(hi[0]);
  if (d0 == d1) return b_.rule("digits-range", {{b_.byte(d0), R::ref(digits_between(lo.substr(1), hi.substr(1)))}});
  std::vector<Seq> alts;
  alts.push_back({b_.byte(d0), R::ref(digits_between(lo.substr(1), std::string(n - 1, '9')))});
  if (d1 - d0 >= 2)
    alts.push_back({b_.range(static_cast<uint8_t>(d0 + 1), static_cast<uint8_t>(d1 - 1)),
                    R::ref(digits_between(std::string(n - 1, '0'), std::string(n - 1, '9')))});
  alts.push_back({b_.byte(d1), R::ref(digits_between(std::string(n - 1, '0'), hi.substr(1)))});
  return b_.rule("digits-range", std::move(alts));
}

// 0 <= lo <= hi: one alternative per digit count, no leading zeros.
int32_t JsonParts::nonneg_range(int64_t lo, int64_t hi) {
  std::vector<Seq> alts;
  const size_t len_lo = std::to_string(lo).size(), len_hi = std::to_string(hi).size();
  int64_t pow = 1;  // 10^(len - 1)
  for (size_t k = 1; k < len_lo; ++k) pow *= 10;
  for (size_t len = len_lo; len <= len_hi; ++len, pow *= 10) {
    const int64_t a = len == len_lo ? lo : pow;
    const int64_t b = len == len_hi ? hi : pow * 10 - 1;
    alts.push_back({R::ref(digits_between(std::to_string(a), std::to_string(b)))});
  }
  return b_.rule("nonneg-range", std::move(alts));
}

int32_t JsonParts::integer_range(int64_t lo, int64_t hi) {
  lo = std::max(lo, -kMaxInt);
  hi = std::min(hi, kMaxInt);
  std::vector<Seq> alts;
  if (hi >= 0) alts.push_back({R::ref(nonneg_range(std::max<int64_t>(lo, 0), hi))});
  if (lo < 0) alts.push_back({b_.byte('-'), R::ref(nonneg_range(hi < 0 ? -hi : 1, -lo))});
  return b_.rule("integer-range", std::move(alts));
}

int32_t JsonParts::number_range(double lo, bool lo_excl, double hi, bool hi_excl) {
  const double lim = static_cast<double>(kMaxInt) + 1;
  auto to_int = [&](double x) { return static_cast<int64_t>(std::clamp(x, -lim, lim)); };
  const int64_t int_lo = to_int(lo_excl ? std::floor(lo) + 1 : std::ceil(lo));
  const int64_t int_hi = to_int(hi_excl ? std::ceil(hi) - 1 : std::floor(hi));
  std::vector<Seq> alts;
  if (int_lo <= int_hi && int_lo <= kMaxInt && int_hi >= -kMaxInt) alts.push_back({R::ref(integer_range(int_lo, int_hi))});
  const int32_t frac = b_.rule("frac", {{b_.byte('.'), R::ref(b_.repeat(b_.range('0', '9'), 1, 16, "frac-digits"))}});
  // n.ddd lies in [n, n+1): needs lo <= n (lo < n if exclusive) and n + 1 <= hi.
  const int64_t a = std::max<int64_t>(0, int_lo), b = std::min(kMaxInt, to_int(std::floor(hi)) - 1);
  if (a <= b) alts.push_back({R::ref(nonneg_range(a, b)), R::ref(frac)});
  // -n.ddd lies in (-(n+1), -n]: needs lo <= -(n+1) and -n <= hi (-n < hi if exclusive).
  const int64_t c = std::max<int64_t>(0, hi_excl ? to_int(-std::ceil(hi)) + 1 : to_int(-std::floor(hi)));
  const int64_t d = std::min(kMaxInt, to_int(-std::ceil(lo)) - 1);
  if (c <= d) alts.push_back({b_.byte('-'), R::ref(nonneg_range(c, d)), R::ref(frac)});
  // At an exclusive integer bound n, n.ddd / -n.ddd are valid when ddd is not all zeros.
  const int32_t frac_nz = b_.rule("frac-nonzero", {{b_.byte('.'), R::ref(b_.repeat(b_.byte('0'), 0, 15, "frac-zeros")),
                                                   b_.range('1', '9'), R::ref(b_.repeat(b_.range('0', '9'), 0, 15, "frac-digits"))}});
  auto boundary = [&](const std::string& digits) {
    Seq seq = b_.literal(digits);
    seq.push_back(R::ref(frac_nz));
    alts.push_back(std::move(seq));
  };
  if (lo_excl && lo == std::floor(lo) && lo >= 0 && lo <= static_cast<double>(kMaxInt) && lo + 1 <= hi)
    boundary(std::to_string(static_cast<int64_t>(lo)));
  if (hi_excl && hi == std::floor(hi) && hi <= 0 && -hi <= static_cast<double>(kMaxInt) && hi - 1 >= lo)
    boundary(std::string(1, '-').append(std::to_string(static_cast<int64_t>(-hi))));
  if (alts.empty()) return -1;
  return b_.rule("number-range", std::move(alts));
}

int32_t JsonParts::number() {
  if (num_ >= 0) return num_;
  const int32_t d = b_.range('0', '9');
  const int32_t frac_digits = b_.repeat(d, 1, 16, "frac-digits");
  const int32_t exp_digits = b_.repeat(d, 1, 2, "exp-digits");
  ByteSet e, sign;
  e.set('e');
  e.set('E');
  sign.set('+');
  sign.set('-');
  const int32_t frac = b_.rule("frac", {{b_.byte('.'), R::ref(frac_digits)}, {}});
  const int32_t exp = b_.rule("exp", {{b_.set(e), b_.set(sign), R::ref(exp_digits)}, {b_.set(e), R::ref(exp_digits)}, {}});
  num_ = b_.rule("number", {{R::ref(integer()), R::ref(frac), R::ref(exp)}});
  return num_;
}

int32_t JsonParts::boolean() {
  if (bool_ < 0) bool_ = b_.rule("boolean", {b_.literal("true"), b_.literal("false")});
  return bool_;
}

int32_t JsonParts::null() {
  if (null_ < 0) null_ = b_.rule("null", {b_.literal("null")});
  return null_;
}

int32_t JsonParts::array_of(int32_t item, int min_items, int max_items, const std::string& name) {
  const int32_t w = ws();
  const Seq empty = {b_.byte('['), R::ref(w), b_.byte(']')};
  if (max_items == 0) return b_.rule(name, {empty});
  const int32_t elem = b_.rule(name + "-item", {{R::ref(item), R::ref(w)}});
  const int32_t more = b_.rule(name + "-next", {{b_.byte(','), R::ref(w), R::ref(elem)}});
  const int32_t rest = b_.repeat(R::ref(more), std::max(min_items - 1, 0), max_items < 0 ? -1 : max_items - 1, name + "-rest");
  std::vector<Seq> alts = {{b_.byte('['), R::ref(w), R::ref(elem), R::ref(rest), b_.byte(']')}};
  if (min_items <= 0) alts.push_back(empty);
  return b_.rule(name, std::move(alts));
}

int32_t JsonParts::any_value() {
  if (value_ >= 0) return value_;
  value_ = b_.new_rule("value");
  object_ = b_.new_rule("object");
  const int32_t w = ws();
  const int32_t kv = b_.rule("member", {{R::ref(any_string()), R::ref(w), b_.byte(':'), R::ref(w), R::ref(value_), R::ref(w)}});
  const int32_t more = b_.rule("member-next", {{b_.byte(','), R::ref(w), R::ref(kv)}});
  const int32_t rest = b_.repeat(R::ref(more), 0, -1, "members-rest");
  b_.define(object_, {{b_.byte('{'), R::ref(w), R::ref(kv), R::ref(rest), b_.byte('}')},
                      {b_.byte('{'), R::ref(w), b_.byte('}')}});
  array_ = array_of(value_, 0, -1, "array");
  b_.define(value_, {{R::ref(object_)}, {R::ref(array_)}, {R::ref(any_string())}, {R::ref(number())},
                     {R::ref(boolean())}, {R::ref(null())}});
  return value_;
}

int32_t JsonParts::any_object() {
  any_value();
  return object_;
}

int32_t JsonParts::any_array() {
  any_value();
  return array_;
}

int32_t JsonParts::one_of_literals(const std::vector<std::string>& texts) {
  return b_.rule("literals", literal_alts(texts));
}

std::vector<GrammarBuilder::Seq> JsonParts::literal_alts(const std::vector<std::string>& texts) {
  struct Node {
    std::map<uint8_t, int> kids;
    bool terminal = false;
  };
  std::vector<Node> trie(1);
  for (const auto& text : texts) {
    int cur = 0;
    for (char ch : text) {
      const auto c = static_cast<uint8_t>(ch);
      auto it = trie[static_cast<size_t>(cur)].kids.find(c);
      if (it != trie[static_cast<size_t>(cur)].kids.end()) {
        cur = it->second;
        continue;
      }
      trie.emplace_back();
      const int id = static_cast<int>(trie.size() - 1);
      trie[static_cast<size_t>(cur)].kids[c] = id;
      cur = id;
    }
    trie[static_cast<size_t>(cur)].terminal = true;
  }
  // A rule per branching node; runs of single-child nodes become literal bytes in one alternative.
  auto branching = [&](size_t i) { return i == 0 || trie[i].kids.size() > 1 || (trie[i].terminal && !trie[i].kids.empty()); };
  std::vector<int32_t> rule(trie.size(), -1);
  for (size_t i = 1; i < trie.size(); ++i)
    if (branching(i)) rule[i] = b_.new_rule("literals");
  std::vector<Seq> root;
  for (size_t i = 0; i < trie.size(); ++i) {
    if (i > 0 && rule[i] < 0) continue;
    std::vector<Seq> alts;
    if (trie[i].terminal) alts.push_back({});
    for (const auto& [c, id] : trie[i].kids) {
      Seq seq = {b_.byte(c)};
      auto k = static_cast<size_t>(id);
      while (!branching(k) && !trie[k].kids.empty()) {  // single child, not an end
        const auto& [c2, id2] = *trie[k].kids.begin();
        seq.push_back(b_.byte(c2));
        k = static_cast<size_t>(id2);
      }
      if (branching(k)) seq.push_back(R::ref(rule[k]));
      alts.push_back(std::move(seq));
    }
    if (i == 0) root = std::move(alts);
    else b_.define(rule[i], std::move(alts));
  }
  return root;
}

int32_t JsonParts::key_not_in(const std::vector<std::string>& excluded) {
  // Trie over the excluded bodies; leaving the trie at a character boundary frees the rest.
  struct Node {
    std::map<uint8_t, int> kids;
    bool terminal = false;
  };
  std::vector<Node> trie(1);
  for (const auto& body : excluded) {
    int cur = 0;
    for (char ch : body) {
      const auto c = static_cast<uint8_t>(ch);
      auto it = trie[static_cast<size_t>(cur)].kids.find(c);
      if (it == trie[static_cast<size_t>(cur)].kids.end()) {
        trie.emplace_back();
        const int id = static_cast<int>(trie.size() - 1);
        trie[static_cast<size_t>(cur)].kids[c] = id;
        cur = id;
      } else {
        cur = it->second;
      }
    }
    trie[static_cast<size_t>(cur)].terminal = true;
  }
  const int32_t free_tail = b_.rule("key-free", {{R::ref(b_.repeat(R::ref(string_char()), 0, -1, "key-chars")), b_.byte('"')}});
  std::vector<int32_t> rules(trie.size());
  for (size_t i = 0; i < trie.size(); ++i) rules[i] = b_.new_rule("key-trie");
  for (size_t i = 0; i < trie.size(); ++i) {
    std::vector<Seq> alts;
    ByteSet kids;
    bool mid_char = false;  // children of a node inside a UTF-8 sequence are continuation bytes
    for (const auto& [c, id] : trie[i].kids) {
      alts.push_back({b_.byte(c), R::ref(rules[static_cast<size_t>(id)])});
      kids.set(c);
      if ((c & 0xC0) == 0x80) mid_char = true;
    }
    if (!mid_char) {
      ByteSet banned = kids;
      banned.set('\\');  // an escape could spell an excluded name another way
      alts.push_back({R::ref(string_char_not_starting(banned)), R::ref(free_tail)});
      if (!trie[i].terminal) alts.push_back({b_.byte('"')});
    }
    b_.define(rules[i], std::move(alts));
  }
  return b_.rule("key-not-in", {{b_.byte('"'), R::ref(rules[0])}});
}

}  // namespace edgellm::sampling
