#pragma once
// Byte helpers shared by the built-in PII scanners (internal).
#include <cstring>
#include <string>
#include <string_view>

#include "hybrid/pii_scan.h"

namespace edgellm::hybrid::detail {

inline char at(std::string_view s, size_t i) { return i < s.size() ? s[i] : '\0'; }
inline char before(std::string_view s, size_t i) { return i == 0 ? '\0' : s[i - 1]; }

// A run of digit groups separated by single separator characters, e.g. "6222 0202 1234".
struct Groups {
  size_t end = 0;          // one past the last digit
  int digits = 0;
  int n_groups = 0;
  int group_len[24] = {};
  char sep = 0;            // the separator used (0: none); mixed separators end the run
  bool overflow = false;   // more digits followed than max_digits
};

inline Groups read_groups(std::string_view s, size_t p, const char* seps, int max_digits) {
  Groups g;
  size_t i = p;
  while (true) {
    size_t st = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    int len = static_cast<int>(i - st);
    if (len == 0) break;
    if (g.n_groups < 24) g.group_len[g.n_groups] = len;
    ++g.n_groups;
    g.digits += len;
    g.end = i;
    if (g.digits > max_digits) { g.overflow = true; return g; }
    char c = at(s, i);
    if (c != 0 && std::strchr(seps, c) && is_digit(at(s, i + 1)) && (g.sep == 0 || g.sep == c)) {
      g.sep = c;
      ++i;
      continue;
    }
    break;
  }
  if (g.n_groups > 24) g.overflow = true;
  return g;
}

// After a number ends at `e`: not glued to a word character and not continued by "-5", ".5".
inline bool right_ok(std::string_view s, size_t e) {
  char c = at(s, e);
  if (is_word(c)) return false;
  if ((c == '-' || c == '.') && is_digit(at(s, e + 1))) return false;
  return true;
}

inline bool left_ok_number(std::string_view s, size_t b) {
  char c = before(s, b);
  if (is_word(c) || c == '.' || c == '+') return false;
  if (c == '-' && b >= 2 && is_digit(s[b - 2])) return false;
  return true;
}

// "tel13812345678", "Mobile13812345678": a phone label glued to the number.
inline bool glued_phone_label(std::string_view s, size_t b) {
  size_t a = b;
  while (a > 0 && is_alpha(s[a - 1]) && b - a < 8) --a;
  if (a == b || (a > 0 && is_word(s[a - 1]))) return false;
  std::string w(s.substr(a, b - a));
  for (auto& c : w) c = static_cast<char>(c | 0x20);
  return w == "tel" || w == "phone" || w == "mobile" || w == "mob" || w == "cell" || w == "ph";
}

inline size_t skip_digits(std::string_view s, size_t i) {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

// ---- phones ----

inline bool cn_mobile_digits(const char* d) { return d[0] == '1' && d[1] >= '3' && d[1] <= '9'; }

// Collects the digits of groups [p, end) into buf (no separators).
inline int collect_digits(std::string_view s, size_t p, size_t end, char* buf, int cap) {
  int n = 0;
  for (size_t i = p; i < end && n < cap; ++i)
    if (is_digit(s[i])) buf[n++] = s[i];
  return n;
}


}  // namespace edgellm::hybrid::detail
