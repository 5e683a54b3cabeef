// Hand-written matchers of the GPT-2, Llama 3 and Qwen2 split patterns (pretokenize_builtin.h).
#include "tokenizer/pretokenize_builtin.h"

#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

// Matches one regex alternative list over cps[begin, end); end acts as end of text.
class Matcher {
 public:
  Matcher(const std::vector<uint32_t>& cps, size_t end) : c_(cps), end_(end) {}

  // Length (in code points) of the GPT-2 pattern's match at i (always >= 1).
  size_t gpt2(size_t i) const {
    if (size_t n = contraction(i, false)) return n;
    const bool sp = c_[i] == ' ' && i + 1 < end_;
    const size_t k = sp ? i + 1 : i;
    if (letter(k)) return run(k, &Matcher::letter) - i;
    if (number(k)) return run(k, &Matcher::number) - i;
    if (other(k)) return run(k, &Matcher::other) - i;
    return whitespace_tail(i);
  }

  // Length of the llama3 (max_digits 3) / qwen2 (max_digits 1) pattern's match at i.
  size_t llama3(size_t i, size_t max_digits) const {
    if (size_t n = contraction(i, true)) return n;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!newline(i) && !letter(i) && !number(i) && letter(i + 1)) return run(i + 1, &Matcher::letter) - i;
    if (letter(i)) return run(i, &Matcher::letter) - i;
    if (number(i)) {
      size_t j = i;
      while (j < end_ && j - i < max_digits && number(j)) ++j;
      return j - i;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t k = (c_[i] == ' ' && other(i + 1)) ? i + 1 : i;
    if (other(k)) {
      size_t j = run(k, &Matcher::other);
      return run(j, &Matcher::newline) - i;
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n.
    const size_t j = run(i, &Matcher::space);
    for (size_t m = j; m > i; --m) {
      if (newline(m - 1)) return m - i;
    }
    return whitespace_tail(i);
  }

 private:
  bool in(size_t i) const { return i < end_; }
  bool letter(size_t i) const { return in(i) && unicode::is_letter(c_[i]); }
  bool number(size_t i) const { return in(i) && unicode::is_number(c_[i]); }
  bool space(size_t i) const { return in(i) && unicode::is_whitespace(c_[i]); }
  bool other(size_t i) const {
    return in(i) && !(unicode::classify(c_[i]) & (unicode::kLetter | unicode::kNumber | unicode::kWhitespace));
  }
  bool newline(size_t i) const { return in(i) && (c_[i] == '\r' || c_[i] == '\n'); }
  size_t run(size_t i, bool (Matcher::*pred)(size_t) const) const {
    while ((this->*pred)(i)) ++i;
    return i;
  }

  // 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive (Unicode simple folding: only the
  // long s U+017F folds onto one of these ASCII letters).
  size_t contraction(size_t i, bool icase) const {
    if (c_[i] != '\'' || !in(i + 1)) return 0;
    auto lower = [&](size_t k) -> uint32_t {
      if (!in(k)) return 0;
      uint32_t cp = c_[k];
      if (icase && cp >= 'A' && cp <= 'Z') cp += 32;
      if (icase && cp == 0x17F) cp = 's';
      return cp;
    };
    const uint32_t a = lower(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    const uint32_t b = lower(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  // \s+(?!\S)|\s+ at i (c_[i] is whitespace).
  size_t whitespace_tail(size_t i) const {
    const size_t j = run(i, &Matcher::space);
    if (j == i) return 1;  // unreachable for well-formed classes; guarantees progress
    if (j == end_ || j - i == 1) return j - i;
    return j - i - 1;  // leave the last space to prefix the following word
  }

  const std::vector<uint32_t>& c_;
  size_t end_;
};

}  // namespace

size_t builtin_match(BuiltinPattern p, const std::vector<uint32_t>& cps, size_t i, size_t end) {
  const Matcher m(cps, end);
  switch (p) {
    case BuiltinPattern::kGpt2: return m.gpt2(i);
    case BuiltinPattern::kLlama3: return m.llama3(i, 3);
    case BuiltinPattern::kQwen2: return m.llama3(i, 1);
  }
  return 1;
}

}  // namespace edgellm::tokenizer
