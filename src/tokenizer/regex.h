#pragma once
// A small backtracking regex over code points, for the split patterns of HF tokenizer.json files
// (std::regex has no \p{L} and is slow). Supported, with Oniguruma's leftmost-first semantics:
// literals (UTF-8), escapes \s \S \d \r \n \t \p{L|N|P|S|M|Z|Lu|Ll|Lt|Lm|Lo|Mn} and escaped
// punctuation; classes [...] with ranges, negation and the escapes; groups (...) (?:...)
// (?i:...) (ASCII case folding, plus U+017F for s and U+212A for k); lookaheads (?=...) (?!...);
// $; quantifiers ? * + {n} {n,m} (greedy) on single characters, ? on groups.
// Recursion depth depends on the pattern only, never on the text.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace edgellm::tokenizer {

class Regex {
 public:
  // Throws InvalidArgument on syntax outside the subset above.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  struct Match {
    size_t begin, end;  // code point indices; end > begin
  };
  // Leftmost non-empty match in cps[from, end) (end acts as the end of the text), if any.
  bool find(const std::vector<uint32_t>& cps, size_t from, size_t end, Match* m) const;

  struct Node;

 private:
  std::unique_ptr<Node> root_;  // a group: the top-level alternatives
};

}  // namespace edgellm::tokenizer
