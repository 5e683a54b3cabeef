// Phone number scanners: mainland mobiles (+86/0086, separators), "+"-prefixed international
// numbers, North American and mainland landline formats.
#include "hybrid/pii_scan_util.h"

namespace edgellm::hybrid::detail {
namespace {

// Mainland mobile, optionally after 0086 / 86 with a separator; returns end or 0.
size_t match_cn_mobile(std::string_view s, size_t p) {
  size_t q = p;
  if (s.compare(p, 4, "0086") == 0) {
    q = p + 4;
    if (at(s, q) == ' ' || at(s, q) == '-') ++q;
  }
  if (!is_digit(at(s, q))) return 0;
  Groups g = read_groups(s, q, " -", 11);
  if (g.overflow || g.digits != 11) return 0;
  // Accepted groupings: 11, 3-4-4, 3-8, 7-4.
  bool grouping = g.n_groups == 1 ||
                  (g.n_groups == 3 && g.group_len[0] == 3 && g.group_len[1] == 4) ||
                  (g.n_groups == 2 && (g.group_len[0] == 3 || g.group_len[0] == 7));
  if (!grouping) return 0;
  char d[16];
  collect_digits(s, q, g.end, d, 16);
  if (!cn_mobile_digits(d)) return 0;
  if (!right_ok(s, g.end)) return 0;
  if (g.sep == ' ' && at(s, g.end) == ' ' && is_digit(at(s, g.end + 1))) return 0;
  return g.end;
}

// "+CC ..." with spaces, dashes, dots or a parenthesised group; 8-15 digits (E.164 allows 15).
size_t match_international(std::string_view s, size_t p) {
  size_t i = p;
  bool paren_cc = false;
  if (s[i] == '(' && at(s, i + 1) == '+') { paren_cc = true; ++i; }
  if (s[i] != '+') return 0;
  ++i;
  if (!is_digit(at(s, i)) || s[i] == '0') return 0;
  int digits = 0;
  size_t last_digit_end = 0;
  if (paren_cc) {
    size_t e = skip_digits(s, i);
    if (e - i > 3 || at(s, e) != ')') return 0;
    digits += static_cast<int>(e - i);
    i = e + 1;
    if (at(s, i) == ' ' || at(s, i) == '-') ++i;
  }
  char sep_used = 0;
  while (i < s.size()) {
    if (is_digit(s[i])) {
      size_t e = skip_digits(s, i);
      digits += static_cast<int>(e - i);
      if (digits > 15) return 0;
      i = last_digit_end = e;
      continue;
    }
    char c = s[i];
    if (c == '(' ) {
      size_t e = skip_digits(s, i + 1);
      if (e == i + 1 || e - i - 1 > 4 || at(s, e) != ')') break;
      digits += static_cast<int>(e - i - 1);
      if (digits > 15) return 0;
      i = e + 1;
      if (at(s, i) == ' ' || at(s, i) == '-') ++i;
      continue;
    }
    if ((c == ' ' || c == '-' || c == '.') && (is_digit(at(s, i + 1)) || at(s, i + 1) == '(')) {
      if (sep_used != 0 && sep_used != c && !(c == ' ' || sep_used == ' ')) break;
      if (sep_used == 0) sep_used = c;
      ++i;
      continue;
    }
    break;
  }
  if (digits < 8 || last_digit_end == 0) return 0;
  if (!right_ok(s, last_digit_end)) return 0;
  return last_digit_end;
}

// North American "(415) 555-0132", "415-555-0132", "415.555.0132".
size_t match_nanp(std::string_view s, size_t p) {
  size_t i = p;
  bool paren = s[i] == '(';
  if (paren) ++i;
  if (skip_digits(s, i) != i + 3 || s[i] < '2') return 0;
  i += 3;
  char sep;
  if (paren) {
    if (at(s, i) != ')') return 0;
    ++i;
    sep = at(s, i) == ' ' ? ' ' : 0;
    if (sep) ++i;
    if (skip_digits(s, i) != i + 3) return 0;
    i += 3;
    if (at(s, i) != '-') return 0;
    ++i;
  } else {
    sep = at(s, i);
    if (sep != '-' && sep != '.') return 0;
    ++i;
    if (skip_digits(s, i) != i + 3) return 0;
    i += 3;
    if (at(s, i) != sep) return 0;
    ++i;
  }
  if (skip_digits(s, i) != i + 4) return 0;
  i += 4;
  return right_ok(s, i) ? i : 0;
}

// Mainland landline "010-12345678", "0755-1234567".
size_t match_cn_landline(std::string_view s, size_t p) {
  if (s[p] != '0') return 0;
  size_t e = skip_digits(s, p);
  size_t area = e - p;
  if ((area != 3 && area != 4) || at(s, e) != '-') return 0;
  size_t st = e + 1;
  size_t e2 = skip_digits(s, st);
  size_t local = e2 - st;
  if ((local != 7 && local != 8) || s[st] == '0') return 0;
  return right_ok(s, e2) ? e2 : 0;
}


}  // namespace

void scan_phones(std::string_view s, std::vector<Candidate>& out) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    size_t e = 0;
    if ((c == '+' || (c == '(' && at(s, i + 1) == '+')) && !is_word(before(s, i))) {
      e = match_international(s, i);
    } else if ((is_digit(c) || c == '(') && (left_ok_number(s, i) || glued_phone_label(s, i))) {
      if (c == '(') e = match_nanp(s, i);
      else {
        e = match_cn_mobile(s, i);
        if (!e) e = match_nanp(s, i);
        if (!e) e = match_cn_landline(s, i);
      }
    }
    if (e) {
      out.push_back({PiiKind::Phone, i, e});
      i = e;
    } else if (is_digit(c)) {
      i = skip_digits(s, i);  // a number that did not match at its start is skipped whole
    } else {
      ++i;
    }
  }
}


}  // namespace edgellm::hybrid::detail
