// Nesting limits for untrusted JSON (issue 17): the text pre-scan, the value measure, and the
// hybrid paths that copy or dump what a client or a cloud sent (orchestrator, SSE parser).
#include "hybrid/json_depth.h"

#include <gtest/gtest.h>

#include <string>

#include "hybrid/cloud_client.h"
#include "hybrid/orchestrator.h"
#include "util/error.h"

using namespace edgellm::hybrid;
using nlohmann::json;

namespace {

std::string nested(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

// A value `depth` arrays deep, built without recursion (nlohmann destroys it iteratively too).
json deep_value(size_t depth) {
  json v = 1;
  for (size_t i = 0; i < depth; ++i) v = json::array({std::move(v)});
  return v;
}

TEST(JsonTextDepth, CountsBracketsOutsideStrings) {
  EXPECT_EQ(json_text_depth(""), 0u);
  EXPECT_EQ(json_text_depth("42"), 0u);
  EXPECT_EQ(json_text_depth("{}"), 1u);
  EXPECT_EQ(json_text_depth(R"({"a": [1, {"b": []}], "c": {}})"), 4u);
  EXPECT_EQ(json_text_depth("[[]][[[]]]"), 3u);  // siblings do not add up
  // Brackets inside strings, escaped quotes, an escaped backslash before the closing quote.
  EXPECT_EQ(json_text_depth(R"({"a": "[[[{{{"})"), 1u);
  EXPECT_EQ(json_text_depth(R"({"a": "\"[[[\"{{"})"), 1u);
  EXPECT_EQ(json_text_depth(R"(["\\", [[]]])"), 3u);
  EXPECT_EQ(json_text_depth(R"(["\\\"[", [[]]])"), 3u);
  EXPECT_EQ(json_text_depth(R"({"k[": {"[": "]]]]"}})"), 2u);
  // Malformed text is measured as far as it goes; stray closers do not go below zero.
  EXPECT_EQ(json_text_depth("]]]]"), 0u);
  EXPECT_EQ(json_text_depth("]]]][[["), 3u);
  EXPECT_EQ(json_text_depth("[[[\"unterminated [[[[[["), 3u);
  EXPECT_EQ(json_text_depth("\"\\"), 0u);  // a lone trailing backslash in a string
}

TEST(JsonTextDepth, LimitIsExactAndCountingStops) {
  EXPECT_EQ(json_text_depth(nested(kMaxJsonDepth)), kMaxJsonDepth);
  EXPECT_TRUE(json_text_within_depth(nested(kMaxJsonDepth)));
  EXPECT_FALSE(json_text_within_depth(nested(kMaxJsonDepth + 1)));
  EXPECT_EQ(json_text_depth(nested(kMaxJsonDepth + 1)), kMaxJsonDepth + 1);
  EXPECT_EQ(json_text_depth(nested(150000)), kMaxJsonDepth + 1);  // stops at limit + 1
  EXPECT_TRUE(json_text_within_depth(nested(3), 3));
  EXPECT_FALSE(json_text_within_depth(nested(4), 3));
  // Deep brackets hidden in a string are fine however many.
  EXPECT_TRUE(json_text_within_depth("{\"x\": \"" + std::string(200000, '[') + "\"}"));
}

TEST(JsonValueDepth, MatchesTheTextMeasure) {
  for (const char* t : {"1", "{}", "[]", R"({"a": [1, {"b": []}], "c": {}})", "[[]][[[]]]"}) {
    // Only single values parse; the sibling case is measured as an array of them.
    const std::string text = std::string("[") + t + "]";
    const json v = json::parse(text, nullptr, false);
    if (v.is_discarded()) continue;
    EXPECT_EQ(json_value_depth(v), json_text_depth(text)) << text;
    EXPECT_EQ(json_value_depth(nlohmann::ordered_json::parse(text)), json_text_depth(text)) << text;
  }
  EXPECT_EQ(json_value_depth(json(5)), 0u);
  EXPECT_EQ(json_value_depth(deep_value(kMaxJsonDepth)), kMaxJsonDepth);
  EXPECT_EQ(json_value_depth(deep_value(200000)), kMaxJsonDepth + 1);
}

TEST(JsonDepthOrchestrator, DeepBodyIsRefusedBeforeItIsWalked) {
  Orchestrator orch(default_policy(), LocalInfo{});
  HybridRequest req;
  req.body = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  req.body["metadata"] = deep_value(100000);  // the PII collector recursed per level before
  struct Counting final : DeviceBackend {
    int calls = 0;
    edgellm::runtime::GenerateResult generate(const std::vector<int32_t>&, const edgellm::runtime::GenerateParams&,
                                     const StreamFn*) override {
      ++calls;
      return {};
    }
  } local;
  int& local_calls = local.calls;
  EXPECT_THROW(orch.handle(req, local, nullptr), edgellm::InvalidArgument);
  EXPECT_EQ(local_calls, 0);
  // At the limit (the body object is level 1) it is answered.
  req.body["metadata"] = deep_value(kMaxJsonDepth - 1);
  EXPECT_NO_THROW(orch.handle(req, local, nullptr));
  EXPECT_EQ(local_calls, 1);
}

TEST(JsonDepthSse, DeepEventIsMalformedNotACrash) {
  // An error event's object is dumped into the message, which recursed per level.
  {
    SseParser p;
    DeltaFn ignore = [](std::string_view) { return true; };
    EXPECT_FALSE(p.feed("data: {\"error\": " + nested(200000) + "}\n\n", ignore));
    EXPECT_NE(p.error().find("malformed JSON"), std::string::npos) << p.error();
  }
}

}  // namespace
