#include "tokenizer/regex.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

constexpr uint32_t kInf = std::numeric_limits<uint32_t>::max();

struct CharSet {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  uint8_t cls = 0;     // unicode::ClassFlag bits, any of which matches
  uint8_t detail = 0;  // unicode::DetailFlag bits, any of which matches
  bool negated = false;

  bool matches(uint32_t cp) const {
    bool in = (cls && (unicode::classify(cp) & cls)) || (detail && (unicode::detail(cp) & detail));
    if (!in && !ranges.empty()) {  // sorted and disjoint (finish()): the last range starting <= cp
      auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                                 [](uint32_t v, const std::pair<uint32_t, uint32_t>& r) { return v < r.first; });
      in = it != ranges.begin() && cp <= std::prev(it)->second;
    }
    return in != negated;
  }

  // Sorts and merges the ranges (DeepSeek's letter class has about a hundred).
  void finish() {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1)
        merged.back().second = std::max(merged.back().second, r.second);
      else
        merged.push_back(r);
    }
    ranges = std::move(merged);
  }
};

}  // namespace

struct Regex::Node {
  enum Kind { kChar, kGroup, kAhead, kNotAhead, kEnd } kind = kChar;
  CharSet set;
  uint32_t min = 1, max = 1;
  std::vector<std::vector<Node>> alts;  // kGroup / lookaheads
};

namespace {

using Node = Regex::Node;
using Seq = std::vector<Node>;

class Parser {
 public:
  explicit Parser(std::string_view pattern) : src_(pattern) {
    for (const auto& u : unicode::decode_utf8(pattern)) {
      if (u.cp == unicode::kInvalid) fail("invalid UTF-8");
      p_.push_back(u.cp);
    }
  }

  Node parse() {
    Node root = group(false, Node::kGroup);
    if (i_ != p_.size()) fail("unbalanced ')'");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw InvalidArgument("regex '" + std::string(src_) + "': " + why + " at " + std::to_string(i_));
  }
  bool more() const { return i_ < p_.size(); }
  uint32_t peek() const { return more() ? p_[i_] : 0; }
  uint32_t next() {
    if (!more()) fail("unexpected end");
    return p_[i_++];
  }
  bool eat(uint32_t c) {
    if (peek() != c || !more()) return false;
    ++i_;
    return true;
  }

  // Alternatives up to ')' or the end.
  Node group(bool icase, Node::Kind kind) {
    Node g;
    g.kind = kind;
    g.alts.emplace_back();
    while (more() && peek() != ')') {
      if (eat('|')) {
        g.alts.emplace_back();
        continue;
      }
      g.alts.back().push_back(quantified(icase));
    }
    return g;
  }

  Node quantified(bool icase) {
    Node n = atom(icase);
    uint32_t lo = 1, hi = 1;
    if (eat('?')) {
      lo = 0;
    } else if (eat('*')) {
      lo = 0, hi = kInf;
    } else if (eat('+')) {
      hi = kInf;
    } else if (peek() == '{') {
      ++i_;
      lo = hi = number();
      if (eat(',')) hi = peek() == '}' ? kInf : number();
      if (!eat('}') || hi < lo) fail("bad {n,m}");
    } else {
      return n;
    }
    if (peek() == '?' || peek() == '+') fail("lazy and possessive quantifiers are not supported");
    if (n.kind == Node::kChar || (n.kind == Node::kGroup && hi == 1)) {
      n.min = lo;
      n.max = hi;
      return n;
    }
    fail("only single characters take repeating quantifiers");
  }

  uint32_t number() {
    uint32_t v = 0;
    if (peek() < '0' || peek() > '9') fail("expected a number");
    while (peek() >= '0' && peek() <= '9') v = v * 10 + (next() - '0');
    return v;
  }

  Node atom(bool icase) {
    const uint32_t c = next();
    Node n;
    if (c == '(') {
      Node::Kind kind = Node::kGroup;
      bool inner_icase = icase;
      if (eat('?')) {
        const uint32_t k = next();
        if (k == '=') kind = Node::kAhead;
        else if (k == '!') kind = Node::kNotAhead;
        else if (k == 'i' && eat(':')) inner_icase = true;
        else if (k != ':') fail("unsupported group");
      }
      n = group(inner_icase, kind);
      if (!eat(')')) fail("missing ')'");
      return n;
    }
    if (c == '$') {
      n.kind = Node::kEnd;
      return n;
    }
    if (c == '[') {
      n.set = char_class();
    } else if (c == '\\') {
      if (!escape(n.set, false)) literal(n.set, p_[i_ - 1], icase);
    } else {
      if (c == '.' || c == '^' || c == ')' || c == '|' || c == '*' || c == '+' || c == '?') fail("unsupported syntax");
      literal(n.set, c, icase);
    }
    n.set.finish();
    return n;
  }

  static void literal(CharSet& s, uint32_t c, bool icase) {
    s.ranges.emplace_back(c, c);
    if (!icase) return;
    if (c >= 'a' && c <= 'z') s.ranges.emplace_back(c - 32, c - 32);
    if (c >= 'A' && c <= 'Z') s.ranges.emplace_back(c + 32, c + 32);
    // Unicode simple folding adds two non-ASCII characters to ASCII letters.
    if (c == 's' || c == 'S') s.ranges.emplace_back(0x17F, 0x17F);
    if (c == 'k' || c == 'K') s.ranges.emplace_back(0x212A, 0x212A);
  }

  // After a backslash: class escapes go into `s` (returns true); otherwise the escaped
  // character is left at p_[i_ - 1] as a literal (returns false).
  bool escape(CharSet& s, bool in_class) {
    const uint32_t c = next();
    switch (c) {
      case 's': s.cls |= unicode::kWhitespace; return true;
      case 'S':
        if (in_class) fail("\\S inside a class is not supported");
        s.cls |= unicode::kWhitespace;
        s.negated = true;
        return true;
      case 'p': property(s); return true;
      case 'r': p_[i_ - 1] = '\r'; return false;
      case 'n': p_[i_ - 1] = '\n'; return false;
      case 't': p_[i_ - 1] = '\t'; return false;
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) fail("unsupported escape");
        return false;
    }
  }

  void property(CharSet& s) {
    if (!eat('{')) fail("expected \\p{...}");
    std::string name;
    while (more() && peek() != '}') name += static_cast<char>(next());
    if (!eat('}')) fail("unterminated \\p{");
    static const std::pair<const char*, std::pair<uint8_t, uint8_t>> kNames[] = {
        {"L", {unicode::kLetter, 0}},      {"N", {unicode::kNumber, 0}},
        {"P", {unicode::kPunct, 0}},       {"S", {unicode::kSymbol, 0}},
        {"M", {unicode::kMark, 0}},        {"Z", {unicode::kSeparator, 0}},
        {"Lu", {0, unicode::kLu}},         {"Ll", {0, unicode::kLl}},
        {"Lt", {0, unicode::kLt}},         {"Lm", {0, unicode::kLm}},
        {"Lo", {0, unicode::kLo}},         {"Mn", {0, unicode::kMn}},
    };
    for (const auto& [n, flags] : kNames) {
      if (name == n) {
        s.cls |= flags.first;
        s.detail |= flags.second;
        return;
      }
    }
    fail("unsupported property \\p{" + name + "}");
  }

  // After '[': members up to the matching ']'. A nested [...] adds its members (Oniguruma).
  CharSet char_class() {
    CharSet s;
    s.negated = eat('^');
    bool first = true;
    while (true) {
      uint32_t c = next();
      if (c == ']' && !first) break;
      first = false;
      if (c == '[') {
        CharSet inner = char_class();
        if (inner.negated) fail("negated nested classes are not supported");
        s.cls |= inner.cls;
        s.detail |= inner.detail;
        s.ranges.insert(s.ranges.end(), inner.ranges.begin(), inner.ranges.end());
        continue;
      }
      if (c == '\\') {
        if (escape(s, true)) continue;
        c = p_[i_ - 1];
      }
      uint32_t hi = c;
      if (peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        hi = next();
        if (hi == '\\') {
          if (escape(s, true)) fail("class escape as a range end");
          hi = p_[i_ - 1];
        }
        if (hi < c) fail("empty range");
      }
      s.ranges.emplace_back(c, hi);
    }
    return s;
  }

  std::string_view src_;
  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

// Continuation: what remains to match after the current sequence ends.
struct Frame {
  const Seq* seq;
  size_t idx;
  const Frame* up;
};

class Matcher {
 public:
  Matcher(const std::vector<uint32_t>& c, size_t end) : c_(c), end_(end) {}

  // Matches seq[idx..] then the continuation; on success *out is where the whole match ends.
  bool run(const Seq& seq, size_t idx, size_t pos, const Frame* up, size_t* out) const {
    if (idx == seq.size()) {
      if (!up) {
        *out = pos;
        return true;
      }
      return run(*up->seq, up->idx, pos, up->up, out);
    }
    const Node& n = seq[idx];
    switch (n.kind) {
      case Node::kChar: {
        size_t j = pos;
        while (j < end_ && j - pos < n.max && n.set.matches(c_[j])) ++j;
        if (j - pos < n.min) return false;
        for (size_t k = j;; --k) {  // greedy: longest first
          if (run(seq, idx + 1, k, up, out)) return true;
          if (k - pos == n.min) return false;
        }
      }
      case Node::kEnd:  // Oniguruma's (Ruby syntax) $: end of text or before a newline
        if (pos != end_ && c_[pos] != '\n') return false;
        return run(seq, idx + 1, pos, up, out);
      case Node::kAhead:
      case Node::kNotAhead: {
        size_t ignored;
        bool found = false;
        for (size_t a = 0; a < n.alts.size() && !found; ++a) found = run(n.alts[a], 0, pos, nullptr, &ignored);
        if (found != (n.kind == Node::kAhead)) return false;
        return run(seq, idx + 1, pos, up, out);
      }
      case Node::kGroup: {
        const Frame after{&seq, idx + 1, up};
        for (const Seq& alt : n.alts)
          if (run(alt, 0, pos, &after, out)) return true;
        return n.min == 0 && run(seq, idx + 1, pos, up, out);
      }
    }
    return false;
  }

  // End of the run of characters matching the first node of `alt` from pos, if that node is an
  // unbounded repetition (else pos): no start before that end can match `alt` when pos fails,
  // because every end the repetition could reach from there it could reach from pos too.
  size_t doomed_until(const Seq& alt, size_t pos) const {
    if (alt.empty() || alt[0].kind != Node::kChar || alt[0].max != kInf) return pos;
    while (pos < end_ && alt[0].set.matches(c_[pos])) ++pos;
    return pos;
  }

 private:
  const std::vector<uint32_t>& c_;
  size_t end_;
};

}  // namespace

Regex::Regex(std::string_view pattern) : root_(std::make_unique<Node>(Parser(pattern).parse())) {}
Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

bool Regex::find(const std::vector<uint32_t>& cps, size_t from, size_t end, Match* m) const {
  const Matcher matcher(cps, end);
  // Per alternative: starts below this index are known to fail (keeps runs like \s+$ linear).
  std::vector<size_t> doomed(root_->alts.size(), 0);
  for (size_t s = from; s < end; ++s) {
    for (size_t a = 0; a < root_->alts.size(); ++a) {
      if (s < doomed[a]) continue;
      size_t e = s;
      if (matcher.run(root_->alts[a], 0, s, nullptr, &e)) {
        if (e == s) break;  // an empty match splits nothing (HF skips it); try the next start
        *m = {s, e};
        return true;
      }
      doomed[a] = matcher.doomed_until(root_->alts[a], s);
    }
  }
  return false;
}

}  // namespace edgellm::tokenizer
