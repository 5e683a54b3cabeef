// libFuzzer target for the regex grammar (JSON Schema "pattern"). Input: the pattern itself
// (decoded string content, as it reaches compile_pattern). It either compiles into a string
// rule or raises InvalidArgument; a compiled one is walked token by token (grammar_walk.h) and a
// finished document must be one valid JSON string.
#include <string>

#include "grammar_walk.h"
#include "sampling/json_schema.h"
#include "util/error.h"

using namespace edgellm;

namespace {
std::shared_ptr<const sampling::TokenTrie> g_trie;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_trie = fuzz::small_trie();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string pattern(reinterpret_cast<const char*>(data), size);
  if (!fuzz::valid_utf8(pattern)) return 0;  // a JSON body cannot carry anything else
  fuzz::Rng rng(pattern);
  nlohmann::ordered_json schema = {{"type", "string"}, {"pattern", pattern}};
  // Length bounds interact with the pattern's own repetition (both are counted in the rule).
  if (rng.below(4) == 0) schema["minLength"] = rng.below(6);
  if (rng.below(4) == 0) schema["maxLength"] = rng.below(40);
  std::shared_ptr<const sampling::Grammar> g;
  try {
    g = sampling::compile_json_schema(schema);
  } catch (const InvalidArgument&) {
    return 0;
  }
  const fuzz::WalkResult w = fuzz::walk_grammar("regex_fuzz", g, g_trie, rng, 128);
  if (w.finished) {
    const auto v = nlohmann::json::parse(w.text, nullptr, false);
    fuzz::check(!v.is_discarded() && v.is_string(), "regex_fuzz", "a finished document is one JSON string");
  }
  return 0;
}
