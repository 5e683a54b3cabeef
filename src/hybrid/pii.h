#pragma once
// Detection of personal data in mixed Chinese/English text: built-in kinds found by hand-written
// linear scanners (no backtracking regexes), plus user regexes and keywords from the policy.
// Spans are byte offsets into the UTF-8 text and never split a code point.
#include <array>
#include <cstddef>
#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm::hybrid {

enum class PiiKind : uint8_t {
  Email,
  Phone,
  IdCard,    // PRC resident identity card number (18 chars, checksummed)
  BankCard,  // 13-19 digits, Luhn valid, known issuer prefix
  IPv4,
  IPv6,
  Plate,     // vehicle licence plate
  Pattern,   // user-defined regex
  Keyword,   // user-defined keyword
};
inline constexpr size_t kPiiKindCount = 9;

// Upper-case names used in policies, placeholders and the audit log: EMAIL, PHONE, ID_CARD,
// BANK_CARD, IPV4, IPV6, PLATE, PATTERN, KEYWORD.
std::string_view pii_kind_name(PiiKind kind);
// Accepts the names above case-insensitively (and '-' for '_'); false if unknown.
bool pii_kind_from_name(std::string_view name, PiiKind* out);

// Placeholder stem for a user pattern name: upper-case [A-Z0-9_] ("employee id" -> EMPLOYEE_ID).
std::string pii_label(std::string_view pattern_name);

struct PiiSpan {
  PiiKind kind = PiiKind::Email;
  size_t begin = 0;  // byte offsets, [begin, end)
  size_t end = 0;
  std::string value;
  std::string label;  // placeholder stem: the kind name, or a user pattern's name
};

struct UserPattern {
  std::string name;   // becomes the placeholder stem, e.g. EMPLOYEE_ID -> [EMPLOYEE_ID_1]
  std::string regex;  // ECMAScript syntax
};

struct PiiConfig {
  std::array<bool, kPiiKindCount> enabled{true, true, true, true, true, true, true, true, true};
  bool western_plates = true;  // also UK-style plates such as "AB12 CDE"
  std::vector<UserPattern> patterns;
  std::vector<std::string> keywords;  // case-insensitive for ASCII letters
};

class PiiDetector {
 public:
  // Throws InvalidArgument naming the pattern if a user regex does not compile.
  explicit PiiDetector(PiiConfig config = {});
  // Non-overlapping spans sorted by offset. When candidates overlap, user patterns and keywords
  // win over built-in kinds, then the more specific kind (ID card > bank card > email > phone ...).
  std::vector<PiiSpan> scan(std::string_view text) const;

  const PiiConfig& config() const { return config_; }

 private:
  PiiConfig config_;
  std::vector<std::regex> compiled_;
};

// Checks exposed for tests and the data generator's cross-check.
bool luhn_valid(std::string_view digits);
// 18 chars: region code, plausible birth date, ISO 7064 MOD 11-2 check character (X allowed).
bool prc_id_valid(std::string_view id);

}  // namespace edgellm::hybrid
