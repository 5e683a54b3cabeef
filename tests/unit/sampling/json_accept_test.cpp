// Exact checks of the schema grammar: given documents are accepted (and complete) or rejected.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "sampling/constraint.h"
#include "sampling/grammar.h"
#include "sampling/json_schema.h"
#include "util/error.h"

using namespace edgellm::sampling;

namespace {

// True when the whole text is a complete document of the grammar.
bool accepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g);
  GrammarMatcher::State s = m.initial(), t;
  for (char c : text) {
    m.advance(s, static_cast<uint8_t>(c), t);
    std::swap(s, t);
    if (s.dead()) return false;
  }
  return s.complete;
}

struct Case {
  const char* doc;
  bool ok;
};

void check(const char* schema, std::initializer_list<Case> cases) {
  auto g = compile_json_schema_text(schema);
  for (const auto& c : cases) EXPECT_EQ(accepts(g, c.doc), c.ok) << "schema " << schema << "\ndoc " << c.doc;
}

}  // namespace

TEST(JsonAccept, Objects) {
  const char* person = R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 3},
    "age": {"type": "integer"}, "nick": {"type": "string"}}, "required": ["name", "age"], "additionalProperties": false})";
  check(person, {{R"({"name":"Al","age":3})", true},
                 {"{\n  \"name\": \"Al\",\n  \"age\": -30,\n  \"nick\": \"x\"\n}", true},
                 {R"({"name":"Al","age":3,"nick":"\u00e9\n"})", true},
                 {R"({"name":"Al"})", false},                       // missing required
                 {R"({"age":3,"name":"Al"})", false},               // order is fixed (documented subset)
                 {R"({"name":"Alan","age":3})", false},             // maxLength
                 {R"({"name":"Al","age":3.5})", false},             // integer
                 {R"({"name":"Al","age":3,"x":1})", false},         // additionalProperties false
                 {R"({"name":"Al","age":03})", false},              // leading zero
                 {R"({"name":"Al","age":3,})", false},              // trailing comma
                 {R"({"name":"Al","age":3} )", false}});            // trailing space after root
  check(R"({"type": "object", "properties": {"id": {"type": "integer"}}, "additionalProperties": {"type": "boolean"}})",
        {{R"({"id":1,"ok":true})", true}, {R"({"ok":true,"no":false})", true}, {R"({})", true},
         {R"({"id":1,"id":true})", false}, {R"({"ok":1})", false}, {R"({"i":true,"idx":false})", true}});
  check(R"({"type": "object"})", {{R"({"a":[1,{"b":null}],"c":"d"})", true}, {"[]", false}});
}

TEST(JsonAccept, ScalarsAndArrays) {
  check(R"({"type": "number"})", {{"0", true}, {"-1.5e+10", true}, {"1E3", true}, {"1.", false}, {".5", false},
                                  {"+1", false}, {"1e", false}, {"12345678901234567", false}});
  check(R"({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2})",
        {{"[true]", true}, {"[true, false]", true}, {"[ true ,false ]", true}, {"[]", false},
         {"[true,true,true]", false}, {"[1]", false}});
  check(R"({"type": "string", "minLength": 2})", {{R"("ab")", true}, {R"("\u0041b")", true}, {R"("\ud83d\ude00")", false},
                                                 {"\"\xC3\xA9\"", false}, {"\"\xC3\xA9\xC3\xA9\"", true},
                                                 {"\"a\tb\"", false}, {R"("a\x")", false}});
  check(R"({"enum": ["a", 1, null, [true]]})", {{R"("a")", true}, {"1", true}, {"null", true}, {"[true]", true},
                                                {R"("b")", false}, {"2", false}});
  check(R"({"const": {"k": "v"}})", {{R"({"k":"v"})", true}, {R"({"k": "v"})", false}});
}

TEST(JsonAccept, Patterns) {
  check(R"({"type": "string", "pattern": "^[a-c]+\\.txt$"})",
        {{R"("abc.txt")", true}, {R"("a.txt")", true}, {R"(".txt")", false}, {R"("abd.txt")", false}, {R"("a.txtx")", false}});
  check(R"({"type": "string", "pattern": "\\d{2}"})", {{R"("x12y")", true}, {R"("12")", true}, {R"("1x2")", false}});
  check(R"({"type": "string", "pattern": "^(ab|c)?\"$"})", {{R"("ab\"")", true}, {R"("\"")", true}, {R"("abc\"")", false}});
  check(R"({"type": "string", "pattern": "^[^0-9]{2}$"})", {{"\"\xC3\xA9x\"", true}, {R"("a1")", false}});
}

TEST(JsonAccept, PlainJsonModes) {
  auto obj = json_object_grammar();
  EXPECT_TRUE(accepts(obj, R"({"a": [1, 2.5, "x", true, false, null, {}], "b": {"c": []}})"));
  EXPECT_FALSE(accepts(obj, "[1]"));
  EXPECT_FALSE(accepts(obj, R"({"a": })"));
  auto val = json_value_grammar();
  EXPECT_TRUE(accepts(val, "[1]"));
  EXPECT_TRUE(accepts(val, R"("s")"));
}

TEST(JsonAccept, IntegerRangesExhaustive) {
  struct Range {
    const char* schema;
    int64_t lo, hi;
  };
  const Range ranges[] = {
      {R"({"type": "integer", "minimum": -12, "maximum": 345})", -12, 345},
      {R"({"type": "integer", "minimum": 0})", 0, INT64_MAX},
      {R"({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100})", 1, 99},
      {R"({"type": "integer", "maximum": -7})", INT64_MIN, -7},
      {R"({"type": "integer", "minimum": 1.5, "maximum": 9.99})", 2, 9},
      {R"({"type": "integer", "minimum": 99, "maximum": 1001})", 99, 1001},
      {R"({"type": ["integer", "null"], "minimum": 5, "maximum": 5})", 5, 5},
  };
  for (const auto& r : ranges) {
    auto g = compile_json_schema_text(r.schema);
    for (int64_t x = -1500; x <= 1500; ++x)
      ASSERT_EQ(accepts(g, std::to_string(x)), x >= r.lo && x <= r.hi) << r.schema << " x=" << x;
    EXPECT_FALSE(accepts(g, "-0")) << r.schema;
    EXPECT_FALSE(accepts(g, "007")) << r.schema;
  }
  // Large bounds near the 16-digit limit.
  auto big = compile_json_schema_text(R"({"type": "integer", "minimum": 1234567890123, "maximum": 1234567890200})");
  EXPECT_TRUE(accepts(big, "1234567890123"));
  EXPECT_TRUE(accepts(big, "1234567890199"));
  EXPECT_FALSE(accepts(big, "1234567890122"));
  EXPECT_FALSE(accepts(big, "1234567890201"));
  EXPECT_THROW(compile_json_schema_text(R"({"type": "integer", "minimum": 3, "maximum": 2})"), edgellm::InvalidArgument);
}

TEST(JsonAccept, NumberRangesAreSound) {
  struct Range {
    const char* schema;
    double lo, hi;
    bool lo_excl, hi_excl;
    std::vector<const char*> must_accept;
  };
  const Range ranges[] = {
      {R"({"type": "number", "minimum": 0, "maximum": 1})", 0, 1, false, false, {"0", "1", "0.5", "0.0", "0.999"}},
      {R"({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10})", 0, 10, true, true, {"1", "9", "1.5", "9.99", "0.5", "0.001"}},
      {R"({"type": "number", "minimum": -2.5, "maximum": 3.5})", -2.5, 3.5, false, false, {"-2", "3", "-1.5", "2.75", "-0.25"}},
      {R"({"type": "number", "maximum": 0, "exclusiveMaximum": 0})", -INFINITY, 0, false, true, {"-1", "-0.5", "-123.25"}},
      {R"({"type": "number", "minimum": 100})", 100, INFINITY, false, false, {"100", "100.5", "123456"}},
  };
  for (const auto& r : ranges) {
    auto g = compile_json_schema_text(r.schema);
    for (const char* m : r.must_accept) EXPECT_TRUE(accepts(g, m)) << r.schema << " " << m;
    for (int n = -150; n <= 150; ++n) {
      for (const char* frac : {"", ".0", ".05", ".5", ".99", ".999999"}) {
        const std::string text = (n == 0 && frac[0] && (std::rand() & 1) ? "-0" : std::to_string(n)) + frac;
        const double x = std::stod(text);
        const bool in = (r.lo_excl ? x > r.lo : x >= r.lo) && (r.hi_excl ? x < r.hi : x <= r.hi);
        if (accepts(g, text)) {
          ASSERT_TRUE(in) << r.schema << " accepted out-of-range " << text;
        }
      }
    }
    EXPECT_FALSE(accepts(g, "1e2")) << r.schema;  // bounded numbers have no exponent
  }
  EXPECT_THROW(compile_json_schema_text(R"({"type": "number", "minimum": 0.2, "maximum": 0.8})"), edgellm::InvalidArgument);
}
