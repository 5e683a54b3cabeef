#include "hybrid/json_depth.h"

#include <utility>
#include <vector>

namespace edgellm::hybrid {

size_t json_text_depth(std::string_view text, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > limit) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // unbalanced: the parser reports it
        break;
      default: break;
    }
  }
  return deepest;
}

namespace {

template <typename J>
size_t value_depth(const J& root, size_t limit) {
  if (!root.is_structured()) return 0;
  // (container, its depth); iterating children pushes them, so memory is the number of
  // containers pending, never the call stack.
  std::vector<std::pair<const J*, size_t>> stack{{&root, 1}};
  size_t deepest = 0;
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (d > deepest) {
      deepest = d;
      if (deepest > limit) return deepest;
    }
    for (const auto& child : *v)
      if (child.is_structured()) stack.emplace_back(&child, d + 1);
  }
  return deepest;
}

}  // namespace

size_t json_value_depth(const nlohmann::json& v, size_t limit) { return value_depth(v, limit); }
size_t json_value_depth(const nlohmann::ordered_json& v, size_t limit) { return value_depth(v, limit); }

}  // namespace edgellm::hybrid
