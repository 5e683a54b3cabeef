#pragma once
// Grammar building blocks for JSON text: whitespace, string characters, literals, numbers and
// the generic value. Internal to the json_schema compiler.
#include <string>
#include <vector>

#include "sampling/grammar.h"

namespace edgellm::sampling {

class JsonParts {
 public:
  explicit JsonParts(GrammarBuilder& b) : b_(b) {}
  using Seq = GrammarBuilder::Seq;

  int32_t ws();           // "" | " " | "\n" [ \t]{0,20}
  int32_t string_char();  // one JSON string character: unescaped UTF-8 char or escape
  // One string character whose first byte is not in `banned_first` (escapes excluded).
  int32_t string_char_not_starting(const ByteSet& banned_first);
  int32_t string(int min_len, int max_len);  // quoted, length in characters
  int32_t any_string();
  int32_t number();
  int32_t integer();
  // Integers in [lo, hi] (inclusive; clamped to the 16-digit values integer() produces).
  int32_t integer_range(int64_t lo, int64_t hi);
  static constexpr int64_t kMaxInt = 9999999999999999;  // 16 digits
  // Numbers between lo and hi (each inclusive or exclusive, +-inf for none), without exponent:
  // integers, n.ddd with [n, n+1) inside the range, and -n.ddd with (-(n+1), -n] inside it.
  // Returns -1 when that subset is empty (e.g. a range narrower than 1 between integers).
  int32_t number_range(double lo, bool lo_excl, double hi, bool hi_excl);
  int32_t boolean();
  int32_t null();
  int32_t any_value();
  int32_t any_object();
  int32_t any_array();
  // Exactly one of the byte strings (duplicates allowed), as a byte trie: alternatives that
  // share a prefix share its parse, so an enum of thousands of values stays one parse.
  int32_t one_of_literals(const std::vector<std::string>& texts);
  // The same as alternatives to inline into a rule (each starts with a distinct byte, unless
  // a text is empty).
  std::vector<Seq> literal_alts(const std::vector<std::string>& texts);
  // Quoted string whose content is none of `excluded` (raw JSON-encoded bodies, no quotes).
  int32_t key_not_in(const std::vector<std::string>& excluded);
  // Generic object/array with given member rules.
  int32_t array_of(int32_t item, int min_items, int max_items, const std::string& name);

  // Appends the UTF-8 multi-byte sequences (lead byte not in banned) as alternatives.
  void utf8_multibyte(std::vector<Seq>& alts, const ByteSet& banned_lead);

 private:
  int32_t digits_between(const std::string& lo, const std::string& hi);  // same length
  int32_t nonneg_range(int64_t lo, int64_t hi);

  GrammarBuilder& b_;
  int32_t ws_ = -1, char_ = -1, str_ = -1, num_ = -1, int_ = -1, bool_ = -1, null_ = -1;
  int32_t value_ = -1, object_ = -1, array_ = -1;
};

}  // namespace edgellm::sampling
