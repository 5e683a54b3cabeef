#pragma once
// Nesting limits for JSON from outside the process (request bodies, cloud answers). nlohmann's
// parser is iterative, but copying, comparing or dumping a value recurses once per level, so a
// few hundred KB of brackets overflow a thread's stack. Text is checked before it is parsed and
// values before they are walked; both without recursion.
#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace edgellm::hybrid {

// Deepest nesting accepted anywhere: far beyond any real request (OpenAI's own schemas stop at
// 5-10 levels), shallow enough for every recursive walk on an HTTP thread's stack.
inline constexpr size_t kMaxJsonDepth = 128;

// Deepest [ / { nesting in JSON text, strings and their escapes skipped; `{}` is 1, a scalar 0.
// Counting stops at limit + 1, so the cost is one pass whatever the input. Malformed text is
// measured as far as it goes (the parser rejects it afterwards).
size_t json_text_depth(std::string_view text, size_t limit = kMaxJsonDepth);
inline bool json_text_within_depth(std::string_view text, size_t limit = kMaxJsonDepth) {
  return json_text_depth(text, limit) <= limit;
}

// The same measure for a parsed value (an explicit stack, no recursion); stops at limit + 1.
size_t json_value_depth(const nlohmann::json& v, size_t limit = kMaxJsonDepth);
size_t json_value_depth(const nlohmann::ordered_json& v, size_t limit = kMaxJsonDepth);

}  // namespace edgellm::hybrid
