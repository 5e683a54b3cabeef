// libFuzzer target for the JSON-schema -> grammar compiler and the constrained sampler.
// Input: a schema as JSON text (what a client sends in response_format or a tool's parameters).
// A schema either compiles or raises InvalidArgument; a compiled grammar is then walked token
// by token over a small vocabulary (grammar_walk.h), and a finished document must be valid JSON.
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
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The server parses bodies with ordered_json and rejects invalid JSON and UTF-8 before any
  // schema is compiled; mirror that.
  const auto schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  fuzz::Rng rng(text);
  sampling::JsonSchemaOptions opt;
  opt.strict = rng.below(4) != 0;
  std::shared_ptr<const sampling::Grammar> g;
  try {
    g = sampling::compile_json_schema(schema, opt);
  } catch (const InvalidArgument&) {
    return 0;
  }
  const fuzz::WalkResult w = fuzz::walk_grammar("schema_fuzz", g, g_trie, rng, 256);
  if (w.finished)
    fuzz::check(nlohmann::json::accept(w.text), "schema_fuzz", "a finished document is valid JSON");
  return 0;
}
