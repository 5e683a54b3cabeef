// libFuzzer target for tool calling. Input is either
//  - a JSON array: a client's "tools"; parse_tool_config accepts it or throws a 4xx ApiError,
//    and the grammar forcing a call is walked token by token (grammar_walk.h); a finished walk
//    must parse back as exactly one call of a declared tool with JSON-object arguments;
//  - anything else: model output, parsed for calls of two fixed tools (every call found names
//    a declared tool and carries a JSON object) and streamed through ToolStreamFilter in random
//    chunks (what it lets through is the text before the first opening tag).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "grammar_walk.h"
#include "hybrid/json_depth.h"
#include "server/api_error.h"
#include "server/tool_calls.h"
#include "util/error.h"

using namespace edgellm;
using server::ojson;

namespace {

std::shared_ptr<const sampling::TokenTrie> g_trie;
server::ToolConfig g_fixed;

bool declared(const server::ToolConfig& cfg, const std::string& name) {
  for (const auto& t : cfg.tools)
    if (t.name == name) return true;
  return false;
}

void check_calls(const server::ParsedOutput& out, const server::ToolConfig& cfg) {
  for (const auto& c : out.calls) {
    fuzz::check(declared(cfg, c.name), "tool_calls_fuzz", "a parsed call names a declared tool");
    const auto args = nlohmann::json::parse(c.arguments, nullptr, false);
    fuzz::check(!args.is_discarded() && args.is_object(), "tool_calls_fuzz", "a parsed call's arguments are a JSON object");
  }
}

void fuzz_tools(const ojson& tools, fuzz::Rng& rng) {
  server::ToolConfig cfg;
  try {
    cfg = server::parse_tool_config(ojson{{"tools", tools}, {"tool_choice", "required"}});
  } catch (const server::ApiError& e) {
    fuzz::check(e.status >= 400 && e.status < 500, "tool_calls_fuzz", "bad tools are a 4xx");
    return;
  }
  if (!cfg.active()) return;
  std::shared_ptr<const sampling::Grammar> g;
  try {
    g = server::tool_call_grammar(cfg.tools, false);
  } catch (const InvalidArgument&) {  // the server answers invalid_schema (400)
    return;
  }
  const fuzz::WalkResult w = fuzz::walk_grammar("tool_calls_fuzz", g, g_trie, rng, 384);
  if (!w.finished) return;
  const server::ParsedOutput out = server::parse_tool_output(w.text, cfg);
  if (std::getenv("FUZZ_VERBOSE")) std::fprintf(stderr, "generated call: %s\n", w.text.c_str());
  fuzz::check(out.calls.size() == 1, "tool_calls_fuzz", "the call grammar's output parses as one call");
  check_calls(out, cfg);
}

void fuzz_output(const std::string& text, fuzz::Rng& rng) {
  check_calls(server::parse_tool_output(text, g_fixed), g_fixed);
  server::ToolStreamFilter f;
  std::string passed;
  for (size_t at = 0; at < text.size();) {
    const size_t n = 1 + rng.below(std::min<size_t>(text.size() - at, 12));
    passed += f.feed(text.substr(at, n));
    at += n;
  }
  const size_t open = text.find(server::kToolCallOpen);
  if (open == std::string::npos) {
    fuzz::check(!f.in_call() && passed + f.held() == text, "tool_calls_fuzz", "without a call all text passes");
  } else {
    fuzz::check(f.in_call() && passed == text.substr(0, open), "tool_calls_fuzz", "text before the call passes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_trie = fuzz::small_trie();
  g_fixed = server::parse_tool_config(ojson::parse(R"({"tool_choice": "auto", "tools": [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object",
      "properties": {"a": {"type": "integer"}, "b": {"type": "number"}}}}}]})"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::Rng rng(text);
  // The server refuses a body nested deeper than 128 before parsing it (request.cpp), so deeper
  // tools never reach parse_tool_config; copying them here would overflow the harness's stack.
  if (!text.empty() && text[0] == '[' && hybrid::json_text_within_depth(text)) {
    const auto tools = ojson::parse(text, nullptr, false);
    if (!tools.is_discarded()) {
      fuzz_tools(tools, rng);
      return 0;
    }
  }
  fuzz_output(text, rng);
  return 0;
}
