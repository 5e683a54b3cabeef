// Hand-written scanners for the built-in PII kinds. Boundaries are checked against ASCII word
// characters only, so numbers glued to Chinese text are still found while parts of longer
// identifiers (order numbers, hashes, version strings) are not.
#include "hybrid/pii_scan_util.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>

namespace edgellm::hybrid::detail {

void scan_emails(std::string_view s, std::vector<Candidate>& out) {
  auto local_char = [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
  };
  for (size_t at_pos = s.find('@'); at_pos != std::string_view::npos; at_pos = s.find('@', at_pos + 1)) {
    size_t l = at_pos;
    size_t limit = at_pos > 64 ? at_pos - 64 : 0;
    while (l > limit && local_char(s[l - 1])) --l;
    while (l < at_pos && (s[l] == '.' || s[l] == '-' || s[l] == '+')) ++l;
    if (l == at_pos || s[at_pos - 1] == '.') continue;
    size_t r = at_pos + 1;
    size_t rlimit = std::min(s.size(), at_pos + 1 + 253);
    while (r < rlimit && (is_alnum(s[r]) || s[r] == '-' || s[r] == '.')) ++r;
    while (r > at_pos + 1 && (s[r - 1] == '.' || s[r - 1] == '-')) --r;
    if (r < s.size() && (is_word(s[r]) || s[r] == '@')) continue;
    // Domain: >= 2 labels, no empty label, labels not starting/ending with '-', alphabetic TLD.
    std::string_view dom = s.substr(at_pos + 1, r - at_pos - 1);
    bool ok = !dom.empty();
    int labels = 0;
    size_t st = 0;
    while (ok && st <= dom.size()) {
      size_t dot = dom.find('.', st);
      if (dot == std::string_view::npos) dot = dom.size();
      std::string_view lab = dom.substr(st, dot - st);
      if (lab.empty() || lab.front() == '-' || lab.back() == '-') ok = false;
      ++labels;
      if (dot == dom.size()) {
        if (lab.size() < 2) ok = false;
        for (char c : lab) if (!is_alpha(c)) ok = false;
        break;
      }
      st = dot + 1;
    }
    if (ok && labels >= 2) out.push_back({PiiKind::Email, l, r});
  }
}


namespace {
// Region code and birth year of an 18-digit ID, without date or checksum checks: numbers shaped
// like this are treated as (possibly mistyped) IDs, not bank cards.
bool id_shaped(std::string_view id) {
  if (id.size() != 18) return false;
  for (size_t k = 0; k < 17; ++k) if (!is_digit(id[k])) return false;
  int prov = (id[0] - '0') * 10 + (id[1] - '0');
  static const int kProv[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42,
                              43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82};
  bool prov_ok = false;
  for (int p : kProv) prov_ok |= p == prov;
  return prov_ok && (id.substr(6, 2) == "19" || id.substr(6, 2) == "20");
}
}  // namespace

bool prc_id_ok(std::string_view id) {
  if (!id_shaped(id)) return false;
  for (size_t k = 0; k < 17; ++k) if (!is_digit(id[k])) return false;
  char last = id[17];
  if (!is_digit(last) && last != 'X' && last != 'x') return false;
  auto num = [&](size_t a, size_t n) {
    int v = 0;
    for (size_t k = a; k < a + n; ++k) v = v * 10 + (id[k] - '0');
    return v;
  };
  int year = num(6, 4), month = num(10, 2), day = num(12, 2);
  if (year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1) return false;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  int dim = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day > dim) return false;
  // ISO 7064 MOD 11-2: weights 2^(17-k) mod 11.
  static const int kW[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (size_t k = 0; k < 17; ++k) sum += (id[k] - '0') * kW[k];
  static const char kCheck[] = "10X98765432";
  char want = kCheck[sum % 11];
  return (last == 'x' ? 'X' : last) == want;
}

void scan_id_cards(std::string_view s, std::vector<Candidate>& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) { ++i; continue; }
    size_t e = skip_digits(s, i);
    size_t end = e;
    if (e - i == 17 && (at(s, e) == 'X' || at(s, e) == 'x')) end = e + 1;
    if (end - i == 18 && !is_word(before(s, i)) && !is_word(at(s, end)) &&
        prc_id_ok(s.substr(i, 18)))
      out.push_back({PiiKind::IdCard, i, end});
    i = end;
  }
}

bool luhn_ok(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool dbl = false;
  for (size_t k = digits.size(); k-- > 0;) {
    char c = digits[k];
    if (!is_digit(c)) return false;
    int d = c - '0';
    if (dbl) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

namespace {
// Issuer prefixes of the major networks (Visa, Mastercard, Amex, UnionPay, Discover, JCB, Diners,
// Maestro) and old 95xx domestic cards. Requiring one keeps epoch-millisecond timestamps
// (starting with 1) and most order numbers out.
bool known_iin(const char* d) {
  int p2 = (d[0] - '0') * 10 + (d[1] - '0');
  int p4 = p2 * 100 + (d[2] - '0') * 10 + (d[3] - '0');
  if (d[0] == '4') return true;
  if (p2 >= 51 && p2 <= 55) return true;
  if (p4 >= 2221 && p4 <= 2720) return true;
  if (p2 == 34 || p2 == 37 || p2 == 36 || p2 == 38 || p2 == 39) return true;
  if (p4 >= 3000 && p4 <= 3059) return true;
  if (p4 >= 3528 && p4 <= 3589) return true;
  if (p2 == 50 || (p2 >= 56 && p2 <= 69)) return true;
  if (p2 == 95) return true;
  return false;
}
}  // namespace

void scan_bank_cards(std::string_view s, std::vector<Candidate>& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) { ++i; continue; }
    Groups g = read_groups(s, i, " -", 19);
    size_t next = g.end;
    if (g.overflow) {
      // Skip the whole over-long run so no 13-19 digit window inside it is considered.
      size_t j = i;
      while (j < s.size() && (is_digit(s[j]) || ((s[j] == ' ' || s[j] == '-') && is_digit(at(s, j + 1))))) ++j;
      i = j;
      continue;
    }
    bool groups_ok = true;
    for (int k = 0; k < g.n_groups && k < 24; ++k) groups_ok &= g.group_len[k] >= 3 || g.n_groups == 1;
    if (g.digits >= 13 && g.digits <= 19 && groups_ok && left_ok_number(s, i) && right_ok(s, g.end)) {
      char d[24] = {};
      int n = collect_digits(s, i, g.end, d, 24);
      bool id_like = n == 18 && g.n_groups == 1 && id_shaped(std::string_view(d, n));
      if (!id_like && known_iin(d) && luhn_ok(std::string_view(d, n))) out.push_back({PiiKind::BankCard, i, g.end});
    }
    i = next;
  }
}

namespace {
// One dotted-quad octet at i; returns its end or 0.
size_t octet(std::string_view s, size_t i) {
  size_t e = skip_digits(s, i);
  size_t n = e - i;
  if (n == 0 || n > 3) return 0;
  if (n > 1 && s[i] == '0') return 0;
  int v = 0;
  for (size_t k = i; k < e; ++k) v = v * 10 + (s[k] - '0');
  return v <= 255 ? e : 0;
}
size_t match_ipv4(std::string_view s, size_t i) {
  for (int k = 0; k < 4; ++k) {
    size_t e = octet(s, i);
    if (!e) return 0;
    if (k < 3) {
      if (at(s, e) != '.') return 0;
      i = e + 1;
    } else {
      i = e;
    }
  }
  return i;
}
}  // namespace

void scan_ipv4(std::string_view s, std::vector<Candidate>& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) { ++i; continue; }
    char b = before(s, i);
    size_t e = 0;
    if (!is_word(b) && b != '.') e = match_ipv4(s, i);
    if (e && right_ok(s, e)) {
      out.push_back({PiiKind::IPv4, i, e});
      i = e;
    } else {
      // Skip the dotted run so "1.2.3.4.5" yields nothing.
      while (i < s.size() && (is_digit(s[i]) || (s[i] == '.' && is_digit(at(s, i + 1))))) ++i;
    }
  }
}

namespace {
bool valid_ipv6(std::string_view t) {
  int groups = 0;
  std::string_view head = t;
  size_t dc = t.find("::");
  if (dc != std::string_view::npos && t.find("::", dc + 1) != std::string_view::npos) return false;
  if (t.find(":::") != std::string_view::npos) return false;
  // Embedded IPv4 tail counts as two groups.
  size_t dot = t.find('.');
  if (dot != std::string_view::npos) {
    size_t colon = t.rfind(':');
    if (colon == std::string_view::npos || colon > dot) return false;
    std::string_view v4 = t.substr(colon + 1);
    if (match_ipv4(v4, 0) != v4.size()) return false;
    groups += 2;
    head = t.substr(0, colon + 1);
    if (head.size() >= 2 && head.substr(head.size() - 2) == "::") {
    } else {
      head.remove_suffix(1);  // drop the ':' before the IPv4 part
    }
  }
  auto count = [&](std::string_view part, bool& ok) {
    int n = 0;
    if (part.empty()) return 0;
    size_t st = 0;
    while (true) {
      size_t c = part.find(':', st);
      if (c == std::string_view::npos) c = part.size();
      size_t len = c - st;
      if (len == 0 || len > 4) { ok = false; return 0; }
      ++n;
      if (c == part.size()) break;
      st = c + 1;
    }
    return n;
  };
  bool ok = true;
  size_t hdc = head.find("::");
  if (hdc == std::string_view::npos) {
    groups += count(head, ok);
    return ok && groups == 8;
  }
  groups += count(head.substr(0, hdc), ok);
  groups += count(head.substr(hdc + 2), ok);
  return ok && groups <= 7;
}
}  // namespace

void scan_ipv6(std::string_view s, std::vector<Candidate>& out) {
  auto run_char = [](char c) { return is_hex(c) || c == ':' || c == '.'; };
  size_t i = 0;
  while (i < s.size()) {
    if (!(is_hex(s[i]) || s[i] == ':')) { ++i; continue; }
    size_t b = i;
    size_t e = i;
    while (e < s.size() && run_char(s[e])) ++e;
    size_t next = e;
    // Sentence punctuation after the address: "at fe80::1." or "fe80::1:".
    while (e > b && s[e - 1] == '.') --e;
    if (e - b >= 2 && s[e - 1] == ':' && s[e - 2] != ':') --e;
    bool bounded = !is_word(before(s, b)) && !is_word(at(s, next)) && !is_word(at(s, e));
    std::string_view t = s.substr(b, e - b);
    if (bounded && t.size() >= 3 && t.size() <= 45 && t.find(':') != std::string_view::npos &&
        valid_ipv6(t))
      out.push_back({PiiKind::IPv6, b, e});
    i = next;
  }
}

namespace {
// Province abbreviations that start mainland plates (UTF-8, 3 bytes each).
const char* const kProvinces[] = {"京", "津", "沪", "渝", "冀", "豫", "云", "辽", "黑", "湘", "皖",
                                  "鲁", "新", "苏", "浙", "赣", "鄂", "桂", "甘", "晋", "蒙", "陕",
                                  "吉", "闽", "贵", "粤", "青", "藏", "川", "宁", "琼"};
bool plate_letter(char c) { return is_upper(c) && c != 'I' && c != 'O'; }
bool plate_char(char c) { return is_digit(c) || plate_letter(c); }

// The 3-byte codes of the province characters, sorted for binary search.
const std::array<uint32_t, std::size(kProvinces)>& province_codes() {
  static const auto codes = [] {
    std::array<uint32_t, std::size(kProvinces)> c{};
    for (size_t k = 0; k < c.size(); ++k) {
      const auto* p = reinterpret_cast<const unsigned char*>(kProvinces[k]);
      c[k] = uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
    }
    std::sort(c.begin(), c.end());
    return c;
  }();
  return codes;
}

size_t match_cn_plate(std::string_view s, size_t i) {
  // Cheapest test first: a plate's province character is followed by an upper-case letter.
  if (i + 3 >= s.size() || !plate_letter(s[i + 3])) return 0;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data() + i);
  uint32_t code = uint32_t(b[0]) << 16 | uint32_t(b[1]) << 8 | b[2];
  const auto& codes = province_codes();
  if (!std::binary_search(codes.begin(), codes.end(), code)) return 0;
  size_t j = i + 3;
  if (!plate_letter(at(s, j))) return 0;
  ++j;
  if (s.compare(j, 2, "\xC2\xB7") == 0) j += 2;  // middle dot "·"
  else if (at(s, j) == ' ' || at(s, j) == '-') ++j;
  size_t st = j;
  while (j < s.size() && plate_char(s[j]) && j - st < 7) ++j;
  if (is_word(at(s, j))) return 0;

  std::string_view body = s.substr(st, j - st);
  // Special-use plates: 4 characters then 学 (learner), 警 (police), 挂 (trailer), 港/澳.
  if (body.size() == 4) {
    for (const char* suffix : {"学", "警", "挂", "港", "澳"})
      if (s.compare(j, 3, suffix) == 0) return j + 3;
    return 0;
  }
  int digits = 0;
  for (char c : body) digits += is_digit(c);
  if (body.size() == 5) return digits >= 2 ? j : 0;
  if (body.size() == 6) {
    // New-energy: small cars D/F + letter/digit + 4 digits; large vehicles 5 digits + D/F.
    bool small = (body[0] == 'D' || body[0] == 'F') && digits >= 4 && is_digit(body[2]) &&
                 is_digit(body[3]) && is_digit(body[4]) && is_digit(body[5]);
    bool large = digits == 5 && (body[5] == 'D' || body[5] == 'F');
    return small || large ? j : 0;
  }
  return 0;
}

// UK current format "AB12 CDE" (also without the space).
size_t match_uk_plate(std::string_view s, size_t i) {
  if (!is_upper(s[i]) || !is_upper(at(s, i + 1)) || !is_digit(at(s, i + 2)) || !is_digit(at(s, i + 3)))
    return 0;
  size_t j = i + 4;
  if (at(s, j) == ' ') ++j;
  for (int k = 0; k < 3; ++k, ++j)
    if (!is_upper(at(s, j))) return 0;
  return is_word(at(s, j)) ? 0 : j;
}
}  // namespace

void scan_plates(std::string_view s, bool western, std::vector<Candidate>& out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t e = 0;
    if (c >= 0xE0 && c < 0xF0) e = match_cn_plate(s, i);
    else if (western && is_upper(s[i]) && !is_word(before(s, i))) e = match_uk_plate(s, i);
    if (e) {
      out.push_back({PiiKind::Plate, i, e});
      i = e;
    } else {
      ++i;
    }
  }
}

}  // namespace edgellm::hybrid::detail

namespace edgellm::hybrid {
bool luhn_valid(std::string_view digits) { return detail::luhn_ok(digits); }
bool prc_id_valid(std::string_view id) { return detail::prc_id_ok(id); }
}  // namespace edgellm::hybrid
