// Tool calling pieces without a model: request validation, conversation rewriting, output
// parsing, the streaming filter, and the call grammars driven over a byte-level vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "sampling/json_schema.h"
#include "server/api_error.h"
#include "server/grammar_constraint.h"
#include "server/tool_calls.h"

namespace edgellm::server {
namespace {

const ojson kWeather = ojson::parse(R"({"type": "function", "function": {"name": "get_weather",
  "description": "Weather", "parameters": {"type": "object", "properties": {
  "city": {"type": "string", "maxLength": 12}, "unit": {"type": "string", "enum": ["c", "f"]}},
  "required": ["city", "unit"]}}})");
const ojson kTime = ojson::parse(R"({"type": "function", "function": {"name": "get_time",
  "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 8}}, "required": ["zone"]}}})");

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e.status;
  }
  return 0;
}

TEST(ToolConfig, ModesAndErrors) {
  ojson body = {{"tools", {kWeather, kTime}}};
  auto tc = parse_tool_config(body);
  EXPECT_EQ(tc.mode, ToolMode::kAuto);
  ASSERT_EQ(tc.tools.size(), 2u);
  EXPECT_EQ(tc.tools[1].name, "get_time");
  body["tool_choice"] = "none";
  EXPECT_EQ(parse_tool_config(body).mode, ToolMode::kNone);
  body["tool_choice"] = "required";
  EXPECT_EQ(parse_tool_config(body).mode, ToolMode::kRequired);
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  tc = parse_tool_config(body);
  EXPECT_EQ(tc.mode, ToolMode::kNamed);
  EXPECT_EQ(tc.forced, "get_time");
  EXPECT_EQ(parse_tool_config(ojson::object()).mode, ToolMode::kNone);

  EXPECT_EQ(status_of([] { parse_tool_config({{"tools", "x"}}); }), 400);
  EXPECT_EQ(status_of([] { parse_tool_config({{"tools", {{{"type", "function"}}}}}); }), 400);
  EXPECT_EQ(status_of([] {
              ojson t = kWeather;
              t["function"]["name"] = "bad name!";
              parse_tool_config({{"tools", {t}}});
            }), 400);
  EXPECT_EQ(status_of([] { parse_tool_config({{"tools", {kWeather, kWeather}}}); }), 400);
  // Arguments are an object: a typeless schema becomes one, any other type is refused.
  EXPECT_EQ(status_of([] {
              ojson t = kWeather;
              t["function"]["parameters"]["type"] = "array";
              parse_tool_config({{"tools", {t}}});
            }), 400);
  {
    ojson t = kWeather;
    t["function"]["parameters"].erase("type");
    EXPECT_EQ(parse_tool_config({{"tools", {t}}}).tools[0].parameters["type"], "object");
  }
  EXPECT_EQ(status_of([] { parse_tool_config({{"tool_choice", "required"}}); }), 400);
  EXPECT_EQ(status_of([] { parse_tool_config({{"tools", {kWeather}}, {"tool_choice", "maybe"}}); }), 400);
  EXPECT_EQ(status_of([] {
              parse_tool_config({{"tools", {kWeather}},
                                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}});
            }), 400);
}

ojson conversation() {
  return ojson::parse(R"([
    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"c\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
    {"role": "user", "content": "And tomorrow?"}
  ])");
}

TEST(PrepareMessages, TemplatesWithoutToolSupport) {
  const auto tc = parse_tool_config({{"tools", {kWeather}}});
  const ojson out = prepare_messages(conversation(), tc, false);
  ASSERT_EQ(out.size(), 4u);  // the tool result and the next user turn are merged
  EXPECT_EQ(out[0]["role"], "system");
  const std::string sys = out[0]["content"];
  EXPECT_EQ(sys.rfind("Be brief.", 0), 0u);
  EXPECT_NE(sys.find("<tools>"), std::string::npos);
  EXPECT_NE(sys.find("\"get_weather\""), std::string::npos);
  EXPECT_EQ(out[2]["role"], "assistant");
  const std::string call = out[2]["content"];
  EXPECT_EQ(call, "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"unit\":\"c\"}}\n</tool_call>");
  EXPECT_FALSE(out[2].contains("tool_calls"));
  EXPECT_EQ(out[3]["role"], "user");
  EXPECT_EQ(out[3]["content"], "<tool_response>\n21 C\n</tool_response>\nAnd tomorrow?");
  // Without tools in play, no instructions are added.
  const ojson plain = prepare_messages(ojson::parse(R"([{"role": "user", "content": "hi"}])"), ToolConfig{}, false);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_EQ(plain[0]["content"], "hi");
}

TEST(PrepareMessages, NativeTemplatesGetStructuredCalls) {
  const auto tc = parse_tool_config({{"tools", {kWeather}}});
  const ojson out = prepare_messages(conversation(), tc, true);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0]["content"], "Be brief.");
  EXPECT_EQ(out[2]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");
  EXPECT_EQ(out[3]["role"], "tool");
  EXPECT_EQ(out[3]["tool_call_id"], "call_1");
}

TEST(PrepareMessages, Errors) {
  auto bad = [](const char* j) { return status_of([j] { prepare_messages(ojson::parse(j), ToolConfig{}, false); }); };
  EXPECT_EQ(bad("[]"), 400);
  EXPECT_EQ(bad("{}"), 400);
  EXPECT_EQ(bad(R"([{"content": "x"}])"), 400);
  EXPECT_EQ(bad(R"([{"role": "pirate", "content": "x"}])"), 400);
  EXPECT_EQ(bad(R"([{"role": "user"}])"), 400);
  EXPECT_EQ(bad(R"([{"role": "user", "content": 3}])"), 400);
  EXPECT_EQ(bad(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])"), 400);
  EXPECT_EQ(bad(R"([{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}])"), 400);
}

TEST(ParseToolOutput, CallsAndContent) {
  const auto tc = parse_tool_config({{"tools", {kWeather, kTime}}});
  auto p = parse_tool_output("Let me check.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}\n</tool_call>", tc);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "get_time");
  EXPECT_EQ(ojson::parse(p.calls[0].arguments), ojson({{"zone", "UTC"}}));
  EXPECT_EQ(p.calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(p.content, "Let me check.");

  p = parse_tool_output("<tool_call>{\"name\":\"get_time\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"X\",\"unit\":\"c\"}}</tool_call>", tc);
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_NE(p.calls[0].id, p.calls[1].id);
  EXPECT_EQ(p.content, "");

  // Llama 3.1 style bare object with "parameters".
  p = parse_tool_output(" {\"name\": \"get_time\", \"parameters\": {\"zone\": \"CET\"}} ", tc);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(ojson::parse(p.calls[0].arguments)["zone"], "CET");

  for (const char* text : {"no calls here", "<tool_call>{not json}</tool_call>",
                           "<tool_call>{\"name\": \"undeclared\", \"arguments\": {}}</tool_call>",
                           "<tool_call>{\"name\": \"get_time\", \"arguments\": [1]}</tool_call>"}) {
    p = parse_tool_output(text, tc);
    EXPECT_TRUE(p.calls.empty()) << text;
    EXPECT_EQ(p.content, text);
  }
}

TEST(ToolStreamFilter, HoldsBackOnlyWhatMayBeATag) {
  ToolStreamFilter f;
  EXPECT_EQ(f.feed("Hello <"), "Hello ");
  EXPECT_EQ(f.feed("b>"), "<b>");
  EXPECT_EQ(f.feed(" ok <tool"), " ok ");
  EXPECT_EQ(f.feed("_call>{\"name\""), "");
  EXPECT_TRUE(f.in_call());
  EXPECT_EQ(f.feed(" more"), "");
  ToolStreamFilter g;
  EXPECT_EQ(g.feed("a <tool_c"), "a ");
  EXPECT_EQ(g.held(), "<tool_c");
}

// Byte-level vocabulary: token b (0..255) is the byte b, token 256 is end-of-generation.
std::shared_ptr<const sampling::TokenTrie> byte_vocab() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  pieces.emplace_back("");
  return std::make_shared<sampling::TokenTrie>(pieces, std::vector<int32_t>{256});
}

// Samples from random logits under the constraint until end of generation.
std::string sample_constrained(runtime::TokenConstraint& c, uint64_t seed, int limit = 4000) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0, 3);
  std::string out;
  for (int i = 0; i < limit; ++i) {
    std::vector<float> logits(257);
    for (auto& l : logits) l = nd(rng);
    logits[256] += 2;  // lean towards ending when allowed
    c.mask(logits.data());
    int best = 0;
    for (int t = 1; t < 257; ++t)
      if (logits[t] > logits[best]) best = t;
    EXPECT_TRUE(std::isfinite(logits[best])) << "everything masked after: " << out;
    c.accept(best);
    if (best == 256) return out;
    out += static_cast<char>(best);
  }
  ADD_FAILURE() << "no end after " << limit << " tokens: " << out;
  return out;
}

TEST(ToolCallGrammar, ForcedCallsAlwaysParseAndMatch) {
  const auto tc = parse_tool_config({{"tools", {kWeather, kTime}}});
  const auto trie = byte_vocab();
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    GrammarTokenConstraint c(tool_call_grammar(tc.tools, false), trie);
    const std::string text = sample_constrained(c, seed);
    ASSERT_EQ(text.rfind("<tool_call>\n", 0), 0u) << text;
    const auto p = parse_tool_output(text, tc);
    ASSERT_EQ(p.calls.size(), 1u) << text;
    const ojson args = ojson::parse(p.calls[0].arguments);
    if (p.calls[0].name == "get_weather") {
      ASSERT_TRUE(args["city"].is_string()) << text;
      EXPECT_LE(args["city"].get<std::string>().size(), 12u * 4);
      EXPECT_TRUE(args["unit"] == "c" || args["unit"] == "f") << text;
    } else {
      EXPECT_EQ(p.calls[0].name, "get_time");
      ASSERT_TRUE(args["zone"].is_string()) << text;
    }
  }
  // A named choice only admits that function.
  GrammarTokenConstraint only_time(tool_call_grammar({tc.tools[1]}, false), trie);
  for (char ch : std::string("<tool_call>\n{\"name\": \"get_")) only_time.accept(static_cast<uint8_t>(ch));
  std::vector<float> logits(257, 0.0f);
  only_time.mask(logits.data());
  EXPECT_TRUE(std::isfinite(logits['t']));
  EXPECT_FALSE(std::isfinite(logits['w']));
}

TEST(LazyGrammarConstraint, FreeUntilTheTriggerThenConstrained) {
  const auto tc = parse_tool_config({{"tools", {kTime}}});
  LazyGrammarConstraint c(kToolCallOpen, tool_call_grammar(tc.tools, true), byte_vocab());
  std::vector<float> logits(257, 0.0f);
  for (char ch : std::string("Sure! <tool_call")) {
    c.mask(logits.data());
    EXPECT_TRUE(std::isfinite(logits['x']));  // nothing forbidden yet
    c.accept(static_cast<uint8_t>(ch));
  }
  EXPECT_FALSE(c.active());
  c.accept('>');
  EXPECT_TRUE(c.active());
  std::fill(logits.begin(), logits.end(), 0.0f);
  c.mask(logits.data());
  EXPECT_TRUE(std::isfinite(logits['\n']));
  EXPECT_TRUE(std::isfinite(logits['{']));
  EXPECT_FALSE(std::isfinite(logits['x']));
  EXPECT_FALSE(std::isfinite(logits[256]));
  const std::string rest = sample_constrained(c, 7);
  const auto p = parse_tool_output("Sure! <tool_call>" + rest, tc);
  ASSERT_EQ(p.calls.size(), 1u) << rest;
  EXPECT_EQ(p.content, "Sure!");
}

TEST(WrapGrammar, PrefixesAndSuffix) {
  auto inner = sampling::compile_json_schema(ojson{{"enum", {1, 2}}});
  auto g = wrap_grammar(*inner, {"A", "BB"}, "!");
  const auto trie = byte_vocab();
  for (const std::string ok : {"A1!", "BB2!"}) {
    sampling::Constraint c(g, trie);
    c.accept_bytes(ok);
    EXPECT_TRUE(c.is_complete()) << ok;
  }
  for (const std::string bad : {"1!", "A3", "B1!"}) {
    sampling::Constraint c(g, trie);
    EXPECT_ANY_THROW(c.accept_bytes(bad)) << bad;
  }
}

}  // namespace
}  // namespace edgellm::server
