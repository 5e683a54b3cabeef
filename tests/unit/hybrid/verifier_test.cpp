#include "hybrid/verifier.h"

#include <gtest/gtest.h>

namespace edgellm::hybrid {
namespace {

// An echo answer for prompt ids [5, 6, 7, 8] scored from position 2 on.
std::string answer(const std::string& tops, const std::string& tokens, const char* finish = "length") {
  return std::string(R"({"choices":[{"text":"","finish_reason":")") + finish + R"(","logprobs":{"tokens":)" + tokens +
         R"(,"top_logprobs":)" + tops + "}}]}";
}

TEST(VerifyAnswer, GreedyTokenAtEachDraftPositionAndTheGeneratedOne) {
  const auto r = parse_verify_answer(
      answer(R"([null,{"token_id:6":-0.1},{"token_id:7":-1.0,"token_id:3":-0.5},{"token_id:8":-0.2,"token_id:9":-0.2},null])",
             R"(["token_id:5","token_id:6","token_id:7","token_id:8","token_id:11"])"),
      4, 2, 100);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.greedy, (std::vector<int32_t>{3, 8, 11}));  // a tie goes to the lower id, as greedy decoding
}

TEST(VerifyAnswer, StopWithoutAGeneratedTokenIsTheEnd) {
  const auto r = parse_verify_answer(answer(R"([null,{"token_id:6":-0.1}])", R"(["token_id:5","token_id:6"])", "stop"),
                                     2, 1, 100);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.greedy, (std::vector<int32_t>{6, kVerifyEnd}));
}

TEST(VerifyAnswer, MalformedOrShortAnswersAreErrors) {
  const std::string toks = R"(["token_id:5","token_id:6","token_id:7"])";
  for (const std::string& body : {
           std::string("{not json"), std::string(R"({"choices":[]})"),
           std::string(R"({"choices":[{"text":"x","logprobs":null}]})"),
           answer(R"([null,{"token_id:6":-0.1}])", R"(["token_id:5","token_id:6"])"),       // short
           answer(R"([null,{"six":-0.1},{"token_id:7":-1}])", toks),                        // not an id
           answer(R"([null,{"token_id:600":-0.1},{"token_id:7":-1}])", toks),              // outside the vocabulary
           answer(R"([null,{},{"token_id:7":-1}])", toks),                                  // empty
           answer(R"([null,{"token_id:6":"x"},{"token_id:7":-1}])", toks),                  // not a number
           answer(R"([null,{"token_id:6":-0.1},{"token_id:7":-1}])", toks),                 // no generated token
       }) {
    const auto r = parse_verify_answer(body, 3, 1, 100);
    EXPECT_EQ(r.error, CloudError::MalformedJson) << body;
    EXPECT_FALSE(r.message.empty());
  }
}

TEST(VerifyAnswer, UnreachableVerifierIsAConnectError) {
  CloudConfig cfg;
  cfg.base_url = "http://127.0.0.1:9/v1";
  cfg.connect_timeout_ms = 2000;
  CompletionsVerifier v(cfg, 100);
  const auto r = v.verify({1, 2, 3}, 2);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(v.requests(), 1);
}

}  // namespace
}  // namespace edgellm::hybrid
