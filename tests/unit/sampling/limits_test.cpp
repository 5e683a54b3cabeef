// Budgets of grammar compilation and matching (issue 17): hostile schemas, patterns and
// grammars end in GrammarLimitError / InvalidArgument, counted in matcher steps and parses,
// never in time. Each test would hang, exhaust memory or overflow the stack without them.
#include <gtest/gtest.h>

#include <string>

#include "json_test_support.h"
#include "sampling/constraint.h"
#include "sampling/grammar.h"
#include "sampling/json_schema.h"
#include "util/error.h"

using namespace edgellm::sampling;
using edgellm::InvalidArgument;
using edgellm::sampling::testing::synthetic_trie;

namespace {

std::string schema_error(const std::string& schema) {
  try {
    compile_json_schema_text(schema);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

std::string nested_items(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += R"({"type":"array","items":)";
  s += R"({"type":"string"})";
  s.append(static_cast<size_t>(depth), '}');
  return s;
}

}  // namespace

// ---- matcher: bounds that hold for any grammar ----

TEST(MatcherLimits, TooManyParsesAliveIsAnError) {
  // 2000 distinct parses after zero bytes: more than kMaxStacks.
  GrammarBuilder b;
  std::vector<GrammarBuilder::Seq> alts;
  for (int i = 0; i < 2000; ++i)
    alts.push_back({b.byte('a'), b.byte(static_cast<uint8_t>(i & 0xFF)), b.byte(static_cast<uint8_t>(i >> 8))});
  GrammarMatcher m(b.build(b.rule("root", std::move(alts))));
  EXPECT_THROW(m.initial(), GrammarLimitError);
}

TEST(MatcherLimits, ExponentialExpansionStopsAtTheStepBudget) {
  // r_k ::= r_{k-1} | r_{k-1} with r_0 ::= "a": entering r_24 reaches 2^24 copies of one parse
  // before any could be merged.
  GrammarBuilder b;
  int32_t r = b.rule("r0", {{b.byte('a')}});
  for (int k = 1; k <= 24; ++k) r = b.rule("r", {{GrammarBuilder::ref(r)}, {GrammarBuilder::ref(r)}});
  GrammarMatcher m(b.build(r));
  try {
    m.initial();
    FAIL() << "expected GrammarLimitError";
  } catch (const GrammarLimitError& e) {
    EXPECT_NE(std::string(e.what()).find("matcher steps"), std::string::npos) << e.what();
  }
}

TEST(MatcherLimits, DeepNullableChainIsAnErrorNotAStackOverflow) {
  // 100000 nested rules that consume nothing before the first byte.
  GrammarBuilder b;
  int32_t r = b.rule("leaf", {{b.byte('a')}});
  for (int k = 0; k < 100000; ++k) r = b.rule("wrap", {{GrammarBuilder::ref(r)}});
  GrammarMatcher m(b.build(r));  // the builder's checks are iterative: no recursion either
  EXPECT_THROW(m.initial(), GrammarLimitError);
}

TEST(MatcherLimits, WorkLimitCoversManyAdvances) {
  GrammarMatcher m(json_value_grammar());
  auto s = m.initial();
  m.set_work_limit(50, "this test");
  GrammarMatcher::State next;
  EXPECT_THROW(
      for (int i = 0; i < 100; ++i) {
        m.advance(s, '[', next);
        std::swap(s, next);
      },
      GrammarLimitError);
  m.clear_work_limit();
}

TEST(MatcherLimits, CompactHandlesVeryDeepStacks) {
  // A document nested 100000 deep gives a 100000-node stack; compact must not recurse.
  GrammarMatcher m(json_value_grammar());
  auto s = m.initial();
  GrammarMatcher::State next;
  for (int i = 0; i < 100000; ++i) {
    m.advance(s, '[', next);
    std::swap(s, next);
  }
  ASSERT_FALSE(s.dead());
  m.compact(s);
  m.advance(s, ']', next);
  EXPECT_FALSE(next.dead());
}

// ---- constraint: the per-token budget and the probe ----

TEST(ConstraintLimits, AmbiguousPatternExceedsTheWalkBudget) {
  // Every character can belong to any of 200 nested '.*' groups.
  auto g = compile_json_schema_text(R"({"type": "string", "pattern": "(.*){200}"})");
  Constraint c(g, synthetic_trie());
  EXPECT_THROW(c.probe(), GrammarLimitError);
}

TEST(ConstraintLimits, OrdinarySchemasStayFarBelowTheBudget) {
  const auto trie = synthetic_trie();
  for (const char* schema : {
           R"({"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array",
               "items": {"enum": ["a", "b", "c"]}}, "n": {"type": "number"}}, "required": ["name"]})",
           R"({"type": "string", "pattern": "^[A-Z][a-z]+ [0-9]{2,4}$"})",
           R"({"type": "string", "pattern": "\\d+"})",
           R"({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 30}, {"type": "null"}]})"}) {
    Constraint c(compile_json_schema_text(schema), trie);
    c.probe();
    std::vector<uint8_t> allowed;
    c.allowed_tokens(allowed);
    EXPECT_LT(c.last_walk_work() * 4, c.walk_budget()) << schema;
  }
}

TEST(ConstraintLimits, ProbeKeepsTheFirstMask) {
  auto g = compile_json_schema_text(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})");
  const auto trie = synthetic_trie();
  Constraint probed(g, trie), plain(g, trie);
  probed.probe();
  std::vector<float> a(static_cast<size_t>(trie->n_vocab()), 0.f), b = a;
  probed.apply(a.data());
  plain.apply(b.data());
  EXPECT_EQ(a, b);
}

TEST(ConstraintLimits, PatternCharacterIsOneParse) {
  // '.' allows every escape (\" \\ \u0001 ...): they share a first byte, yet one parse
  // follows a character, so (.*){k} costs k parses, not k times the number of escapes.
  GrammarMatcher m(compile_json_schema_text(R"({"type": "string", "pattern": "^.*$"})"));
  auto s = m.initial();
  GrammarMatcher::State next;
  for (char ch : std::string("\"ab\\u0001c")) {
    m.advance(s, static_cast<uint8_t>(ch), next);
    std::swap(s, next);
    EXPECT_LE(s.stacks.size(), 2u) << "after '" << ch << "'";
  }
}

// ---- schema compiler budgets ----

TEST(SchemaLimits, DepthIsBounded) {
  EXPECT_NO_THROW(compile_json_schema_text(nested_items(60)));
  EXPECT_NE(schema_error(nested_items(65)).find("nests more than 64 levels"), std::string::npos);
  // The issue's reproducer: 10000 levels (3.36 GB before) is refused at level 65.
  EXPECT_NE(schema_error(nested_items(10000)).find("nests more than"), std::string::npos);
}

TEST(SchemaLimits, LargeEnumIsATrieAndHugeEnumIsRefused) {
  std::string e = R"({"enum": [)";
  for (int i = 0; i < 10000; ++i) e += (i ? ",\"v" : "\"v") + std::to_string(i) + "\"";
  e += "]}";
  GrammarMatcher m(compile_json_schema_text(e));
  auto s = m.initial();
  EXPECT_EQ(s.stacks.size(), 1u);  // one parse, not 10000
  GrammarMatcher::State next;
  for (char ch : std::string("\"v9999\"")) {
    m.advance(s, static_cast<uint8_t>(ch), next);
    std::swap(s, next);
    ASSERT_FALSE(s.dead());
  }
  EXPECT_TRUE(s.complete);

  std::string huge = R"({"enum": [)";
  for (int i = 0; i < 100000; ++i) huge += (i ? "," : "") + std::to_string(i);
  huge += "]}";
  EXPECT_NE(schema_error(huge).find("more than 10000"), std::string::npos);
}

TEST(SchemaLimits, HugeRepetitionsAndGrammarsAreRefused) {
  EXPECT_NE(schema_error(R"({"type": "string", "pattern": "^a{0,100000}b{0,100000}c{0,100000}$"})").find("grammar rules"),
            std::string::npos);
}

TEST(SchemaLimits, UnsatisfiableRequiredPropertyIsRefused) {
  const std::string err = schema_error(R"({"type": "object", "properties": {"a": {"type": "string"}},
      "required": ["b"], "additionalProperties": false})");
  EXPECT_NE(err.find("no document can satisfy"), std::string::npos) << err;
  EXPECT_NE(err.find("'b'"), std::string::npos) << err;
  // Without additionalProperties: false the undeclared required property is allowed.
  EXPECT_EQ(schema_error(R"({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]})"), "");
  // A required property whose own schema is unsatisfiable.
  EXPECT_NE(schema_error(R"({"type": "object", "properties": {"a": false}, "required": ["a"]})"), "");
}

TEST(SchemaLimits, BadUnicodeEscapeInPatternIsAnInvalidArgument) {
  // stoul used to throw std::invalid_argument past the server's 400 mapping (a 500).
  EXPECT_NE(schema_error(R"({"type": "string", "pattern": "\\u/0e9"})").find("hex digits"), std::string::npos);
  EXPECT_NE(schema_error(R"({"type": "string", "pattern": "\\u-123"})").find("hex digits"), std::string::npos);
  EXPECT_EQ(schema_error(R"({"type": "string", "pattern": "^\\u00e9$"})"), "");
}
