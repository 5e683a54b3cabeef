// Request bodies an attacker shapes (issue 17) that need no model: nesting depth refused before
// parsing, and client text with a NUL kept whole in the error body.
#include <gtest/gtest.h>

#include <string>

#include "hybrid/json_depth.h"
#include "server/api_error.h"
#include "server/request.h"

namespace edgellm::server {
namespace {

std::string nested(size_t depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

ApiError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "no error");
}

TEST(ParseBody, DepthIsCheckedBeforeParsing) {
  const size_t limit = hybrid::kMaxJsonDepth;
  // The body object is level 1: "x" may hold limit - 1 levels.
  EXPECT_NO_THROW(parse_body("{\"x\": " + nested(limit - 1) + "}"));
  ApiError e = error_of([&] { parse_body("{\"x\": " + nested(limit) + "}"); });
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "json_too_deep");
  EXPECT_NE(e.message.find(std::to_string(limit)), std::string::npos);
  // The reproducer: an ordered object copied the earlier deep value when "y" arrived.
  e = error_of([&] { parse_body("{\"x\": " + nested(150000) + ", \"y\": 1}"); });
  EXPECT_EQ(e.code, "json_too_deep");
  // Brackets in strings do not count; malformed text is still invalid_json.
  EXPECT_NO_THROW(parse_body("{\"x\": \"" + std::string(100000, '[') + "\\\"{{\"}"));
  EXPECT_EQ(error_of([] { parse_body("{\"x\": [[[1]]"); }).code, "invalid_json");
}

TEST(CheckModel, NulInTheModelIdStaysInTheMessage) {
  const std::string id = std::string("evil") + '\0' + "tail";
  ojson body = {{"model", id}};
  ApiError e = error_of([&] { check_model(body, "served-model"); });
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_NE(e.message.find(id), std::string::npos);
  const auto msg = e.body()["error"]["message"].get<std::string>();
  EXPECT_NE(msg.find(id), std::string::npos);
  EXPECT_NE(msg.find("served-model"), std::string::npos);
  // On the wire the NUL is a JSON escape, so nothing downstream cuts the text short either.
  EXPECT_NE(e.body().dump().find("evil\\u0000tail"), std::string::npos);
  // A megabyte of id is not echoed back whole.
  body["model"] = std::string(1 << 20, 'x');
  e = error_of([&] { check_model(body, "served-model"); });
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_LT(e.message.size(), 400u);
  EXPECT_NE(e.message.find(std::string(256, 'x') + "..."), std::string::npos);
}

TEST(CheckModel, AcceptsTheNameAndItsAliasesOnly) {
  const std::vector<std::string> aliases = {"qwen2.5-coder-1.5b"};
  for (const std::string ok : {"qwen2.5-coder-1.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b"})
    EXPECT_NO_THROW(check_model({{"model", ok}}, "qwen2.5-coder-1.5b-instruct-q4_k_m", aliases)) << ok;
  EXPECT_NO_THROW(check_model(ojson::object(), "qwen2.5-coder-1.5b-instruct-q4_k_m", aliases));
  const ApiError e = error_of([&] { check_model({{"model", "qwen2.5-coder-0.5b"}}, "qwen2.5-coder-1.5b-instruct-q4_k_m", aliases); });
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
}

}  // namespace
}  // namespace edgellm::server
