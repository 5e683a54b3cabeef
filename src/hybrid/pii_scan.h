#pragma once
// Built-in PII scanners (internal to pii.cpp and its tests). Each appends candidate spans for one
// kind; overlaps between kinds are resolved by PiiDetector. All scanners are single forward passes
// over the bytes with bounded look-ahead, so input size never causes super-linear work.
#include <string_view>
#include <vector>

#include "hybrid/pii.h"

namespace edgellm::hybrid::detail {

struct Candidate {
  PiiKind kind;
  size_t begin;
  size_t end;
};

void scan_emails(std::string_view s, std::vector<Candidate>& out);
void scan_phones(std::string_view s, std::vector<Candidate>& out);
void scan_id_cards(std::string_view s, std::vector<Candidate>& out);
void scan_bank_cards(std::string_view s, std::vector<Candidate>& out);
void scan_ipv4(std::string_view s, std::vector<Candidate>& out);
void scan_ipv6(std::string_view s, std::vector<Candidate>& out);
void scan_plates(std::string_view s, bool western, std::vector<Candidate>& out);

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
inline bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
inline bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// Word characters for boundary tests: ASCII letters, digits and '_'. Bytes of multi-byte UTF-8
// characters are not word characters, so "电话13812345678" still has a boundary before the 1.
inline bool is_word(char c) { return is_alnum(c) || c == '_'; }

}  // namespace edgellm::hybrid::detail
