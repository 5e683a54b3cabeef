// Constrained decoding: random token walks under each schema must always finish, parse with
// nlohmann::json, and validate with the independent validator in json_test_support.
#include "sampling/json_schema.h"

#include <gtest/gtest.h>

#include <cmath>

#include "json_test_support.h"
#include "sampling/constraint.h"
#include "util/error.h"

using namespace edgellm::sampling;
using edgellm::sampling::testing::random_walk;
using edgellm::sampling::testing::synthetic_trie;
using edgellm::sampling::testing::validate;
using nlohmann::json;

namespace {

// Runs `walks` random walks; each must finish, parse and validate. Returns the documents.
std::vector<json> walk_schema(const std::string& schema_text, int walks, uint64_t seed = 1, int budget = 60) {
  const json schema = json::parse(schema_text);
  auto grammar = compile_json_schema_text(schema_text);
  auto trie = synthetic_trie();
  std::vector<json> docs;
  std::mt19937_64 rng(seed);
  for (int w = 0; w < walks; ++w) {
    Constraint c(grammar, trie);
    const auto r = random_walk(c, *trie, rng, budget);
    EXPECT_TRUE(r.failure.empty()) << r.failure << "\nschema: " << schema_text;
    if (!r.failure.empty()) break;
    EXPECT_TRUE(r.finished);
    json doc;
    try {
      doc = json::parse(r.text);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unparseable document '" << r.text << "': " << e.what();
      break;
    }
    std::string why;
    EXPECT_TRUE(validate(doc, schema, schema, &why)) << r.text << " : " << why << "\nschema: " << schema_text;
    docs.push_back(doc);
  }
  return docs;
}

}  // namespace

TEST(JsonSchema, ObjectWithRequiredOptionalAndLimits) {
  const auto docs = walk_schema(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 10},
      "age": {"type": "integer"},
      "score": {"type": "number"},
      "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
      "married": {"type": "boolean"}
    },
    "required": ["name", "age"],
    "additionalProperties": false})", 60);
  // Optional properties appear in some documents and not in others.
  int with_tags = 0;
  for (const auto& d : docs) with_tags += d.contains("tags");
  EXPECT_GT(with_tags, 0);
  EXPECT_LT(with_tags, static_cast<int>(docs.size()));
}

TEST(JsonSchema, EnumAndConst) {
  const auto docs = walk_schema(R"({"type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue", null, 3, {"a": [1]}]}, "kind": {"const": "fixed"}},
    "required": ["color", "kind"], "additionalProperties": false})", 40);
  for (const auto& d : docs) EXPECT_EQ(d["kind"], "fixed");
}

TEST(JsonSchema, EnumFilteredByType) {
  const auto docs = walk_schema(R"({"type": "string", "enum": ["a", 1, "b"]})", 20);
  for (const auto& d : docs) EXPECT_TRUE(d.is_string());
}

TEST(JsonSchema, AnyOfAndOneOf) {
  walk_schema(R"({"anyOf": [{"type": "number"},
    {"type": "object", "properties": {"x": {"type": "null"}}, "required": ["x"], "additionalProperties": false},
    {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]})", 60);
  walk_schema(R"({"oneOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]})", 40);
  walk_schema(R"({"type": ["string", "null"]})", 20);
}

TEST(JsonSchema, RecursiveRefsToDefsAndDefinitions) {
  walk_schema(R"({"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
    "required": ["value"], "additionalProperties": false}}, "$ref": "#/$defs/node"})", 40);
  walk_schema(R"({"definitions": {"p": {"type": "string", "maxLength": 4}},
    "type": "object", "properties": {"a": {"$ref": "#/definitions/p"}, "b": {"allOf": [{"$ref": "#/definitions/p"}]}},
    "required": ["a", "b"], "additionalProperties": false})", 30);
}

TEST(JsonSchema, AdditionalPropertiesSchemaExcludesDeclaredKeys) {
  const auto docs = walk_schema(R"({"type": "object", "properties": {"id": {"type": "integer"}, "ab": {"type": "null"}},
    "required": ["id"], "additionalProperties": {"type": "string", "maxLength": 2}})", 80, 3, 80);
  int extra = 0;
  for (const auto& d : docs) extra += d.size() > (d.contains("ab") ? 2u : 1u);
  EXPECT_GT(extra, 0) << "no document used an additional property";
}

TEST(JsonSchema, ArrayItemCounts) {
  const auto docs = walk_schema(R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4})", 60);
  std::set<size_t> sizes;
  for (const auto& d : docs) sizes.insert(d.size());
  EXPECT_EQ(*sizes.begin(), 2u);
  EXPECT_EQ(*sizes.rbegin(), 4u);
  walk_schema(R"({"type": "array", "maxItems": 0})", 5);
}

TEST(JsonSchema, StringLengthsCountCharacters) {
  const auto docs = walk_schema(R"({"type": "string", "minLength": 3, "maxLength": 5})", 60, 5, 20);
  bool multibyte = false;
  for (const auto& d : docs) multibyte = multibyte || d.get<std::string>().size() > 5;
  EXPECT_TRUE(multibyte) << "expected some document with multi-byte characters";
}

TEST(JsonSchema, Patterns) {
  walk_schema(R"({"type": "string", "pattern": "^[A-Z][a-z]{2,5}-\\d{3}$"})", 40);
  walk_schema(R"({"type": "string", "pattern": "ab+c"})", 20);
  walk_schema(R"({"type": "string", "pattern": "^(x|\"q\\\\)*[^a-z]?$"})", 40);
}

TEST(JsonSchema, PlainJsonObjectMode) {
  auto trie = synthetic_trie();
  std::mt19937_64 rng(9);
  for (int w = 0; w < 60; ++w) {
    Constraint c(json_object_grammar(), trie);
    const auto r = random_walk(c, *trie, rng);
    ASSERT_TRUE(r.failure.empty()) << r.failure;
    json doc;
    ASSERT_NO_THROW(doc = json::parse(r.text)) << r.text;
    EXPECT_TRUE(doc.is_object()) << r.text;
  }
}

TEST(JsonSchema, IntegerBounds) {
  walk_schema(R"({"type": "object", "properties": {"age": {"type": "integer", "minimum": 18, "maximum": 130},
    "delta": {"type": "integer", "exclusiveMinimum": -5, "exclusiveMaximum": 5},
    "score": {"type": "number", "minimum": 0, "maximum": 1}, "t": {"type": "number", "exclusiveMaximum": -1}},
    "required": ["age", "delta", "score", "t"],
    "additionalProperties": false})", 40);
}

TEST(JsonSchema, EmptySchemaIsAnyValue) { walk_schema("{}", 40); walk_schema("true", 10); }

TEST(JsonSchema, RejectedFeaturesGiveClearErrors) {
  auto expect_error = [](const std::string& schema, const std::string& needle) {
    try {
      compile_json_schema_text(schema);
      ADD_FAILURE() << "no error for " << schema;
    } catch (const edgellm::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"type": "string", "minimum": 3})", "minimum");
  expect_error(R"({"allOf": [{"type": "string"}, {"maxLength": 3}]})", "allOf");
  expect_error(R"({"not": {"type": "null"}})", "not");
  expect_error(R"({"type": "object", "patternProperties": {"^x": {}}})", "patternProperties");
  expect_error(R"({"type": "array", "items": [{"type": "string"}]})", "tuple");
  expect_error(R"({"$ref": "http://example.com/s.json"})", "local");
  expect_error(R"({"$ref": "#/$defs/missing"})", "does not exist");
  expect_error(R"({"$ref": "#"})", "left-recursive");
  expect_error(R"({"type": "object", "properties": {"a": false}, "required": ["a"]})", "no finite document");
  expect_error(R"({"type": "wat"})", "unknown type");
  expect_error(R"js({"type": "string", "pattern": "(a)\\1"})js", "backreference");
  expect_error(R"js({"type": "string", "pattern": "(?=a)"})js", "lookaround");
  expect_error(R"({"type": "string", "minLength": 4, "maxLength": 2})", "maxLength");
  expect_error("{not json", "not valid JSON");
  // Non-strict mode ignores what it cannot enforce.
  JsonSchemaOptions lenient;
  lenient.strict = false;
  EXPECT_NO_THROW(compile_json_schema_text(R"({"type": "string", "minimum": 3})", lenient));
}

TEST(JsonSchema, EogOnlyWhenCompleteAndControlTokensNeverAllowed) {
  auto trie = synthetic_trie();
  const int32_t eog = trie->eog()[0], control = eog - 1;
  Constraint c(compile_json_schema_text(R"({"type": "array", "items": {"type": "integer"}})"), trie);
  EXPECT_FALSE(c.allows(eog));
  EXPECT_FALSE(c.allows(control));
  EXPECT_THROW(c.accept(eog), edgellm::InvalidArgument);
  c.accept_bytes("[1");
  EXPECT_FALSE(c.is_complete());
  EXPECT_FALSE(c.allows(eog));
  EXPECT_THROW(c.accept('x'), edgellm::InvalidArgument);
  c.accept(']');
  EXPECT_TRUE(c.is_complete());
  EXPECT_TRUE(c.allows(eog));
  std::vector<float> logits(static_cast<size_t>(trie->n_vocab()), 0.0f);
  c.apply(logits.data());
  for (size_t i = 0; i < logits.size(); ++i)
    EXPECT_EQ(std::isinf(logits[i]), static_cast<int32_t>(i) != eog) << "token " << i;
  c.accept(eog);
  EXPECT_TRUE(c.is_finished());
}

TEST(JsonSchema, InvalidUtf8PiecesNeverAllowed) {
  auto trie = synthetic_trie();
  Constraint c(compile_json_schema_text(R"({"type": "string"})"), trie);
  c.accept('"');
  std::vector<uint8_t> allowed;
  c.allowed_tokens(allowed);
  for (int32_t id = 0; id < trie->n_vocab(); ++id) {
    const std::string& p = trie->piece(id);
    if (p == "\xED\xA0\x80" || p == "\xC0\xAF" || p == "\\ud83d" || p == "\x01" || p == "\xFF") {
      EXPECT_FALSE(allowed[static_cast<size_t>(id)]) << "piece " << id;
    }
    if (p == "\xC3" || p == "caf\xC3\xA9" || p == "\xF0\x9F") {
      EXPECT_TRUE(allowed[static_cast<size_t>(id)]) << "piece " << id;
    }
  }
}
