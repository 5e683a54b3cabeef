// CloudClient against the in-process fake endpoint: each way of failing must be classified, and
// retries/backoff/circuit breaking must follow the rules (retry connect errors and 5xx only).
#include "hybrid/cloud_client.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "fake_cloud.h"

using namespace edgellm::hybrid;
using edgellm::hybrid::testing::FakeCloud;
using edgellm::hybrid::testing::FakeMode;
using nlohmann::json;

namespace {
CloudConfig config_for(const FakeCloud& f) {
  CloudConfig c;
  c.base_url = f.base_url();
  c.model = "cloud-model";
  c.api_key_env = "EDGELLM_TEST_CLOUD_KEY";
  c.connect_timeout_ms = 2000;
  c.timeout_ms = 5000;
  c.max_retries = 2;
  c.backoff_ms = 1;
  return c;
}
json request(const std::string& user) {
  return {{"model", "local"}, {"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", 32}};
}
}  // namespace

TEST(CloudClient, CompletesAndSendsModelAndKey) {
  FakeCloud f;
  setenv("EDGELLM_TEST_CLOUD_KEY", "sk-test-123", 1);
  CloudClient c(config_for(f));
  CloudResult r = c.complete(request("你好 world"));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.text, "echo: 你好 world");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.prompt_tokens, 11);
  EXPECT_EQ(r.completion_tokens, 7);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.http_status, 200);
  ASSERT_EQ(f.bodies().size(), 1u);
  EXPECT_EQ(f.bodies()[0]["model"], "cloud-model");
  EXPECT_EQ(f.bodies()[0]["stream"], false);
  EXPECT_EQ(f.auth_headers()[0], "Bearer sk-test-123");
  unsetenv("EDGELLM_TEST_CLOUD_KEY");
}

TEST(CloudClient, StreamsDeltasIncrementally) {
  FakeCloud f;
  const std::string reply = "流式回答 with [EMAIL_1] inside, 足够长的一段文字。";
  f.set_reply(reply);
  CloudClient c(config_for(f));
  std::vector<std::string> deltas;
  CloudResult r = c.stream(request("hi"), [&](std::string_view d) {
    deltas.emplace_back(d);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_GT(deltas.size(), 5u);
  std::string joined;
  for (auto& d : deltas) joined += d;
  EXPECT_EQ(joined, reply);
  EXPECT_EQ(r.text, reply);
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.completion_tokens, 7);  // from the include_usage chunk
  EXPECT_TRUE(r.delivered);
  EXPECT_EQ(f.bodies()[0]["stream"], true);
}

TEST(CloudClient, Http500IsRetriedThenReported) {
  FakeCloud f;
  f.set_mode(FakeMode::Status500);
  CloudClient c(config_for(f));
  CloudResult r = c.complete(request("x"));
  EXPECT_EQ(r.error, CloudError::HttpStatus);
  EXPECT_EQ(r.http_status, 500);
  EXPECT_NE(r.message.find("upstream overloaded"), std::string::npos) << r.message;
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(f.requests(), 3);
}

TEST(CloudClient, TransientFailuresRecoverWithinRetries) {
  FakeCloud f;
  f.set_fail_first(2);
  CloudClient c(config_for(f));
  CloudResult r = c.stream(request("retry me"), [](std::string_view) { return true; });
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.text, "echo: retry me");
}

TEST(CloudClient, Http400IsNotRetried) {
  FakeCloud f;
  f.set_mode(FakeMode::Status400);
  CloudClient c(config_for(f));
  CloudResult r = c.stream(request("x"), [](std::string_view) { return true; });
  EXPECT_EQ(r.error, CloudError::HttpStatus);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_NE(r.message.find("bad parameter"), std::string::npos);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_FALSE(r.delivered);
}

TEST(CloudClient, MalformedJsonPlainAndStreamed) {
  FakeCloud f;
  f.set_mode(FakeMode::Malformed);
  CloudClient c(config_for(f));
  CloudResult a = c.complete(request("x"));
  EXPECT_EQ(a.error, CloudError::MalformedJson) << a.message;
  EXPECT_EQ(a.attempts, 1);
  CloudResult b = c.stream(request("x"), [](std::string_view) { return true; });
  EXPECT_EQ(b.error, CloudError::MalformedJson) << b.message;
}

TEST(CloudClient, ErrorEventInStream) {
  FakeCloud f;
  f.set_mode(FakeMode::ErrorEvent);
  CloudClient c(config_for(f));
  CloudResult r = c.stream(request("x"), [](std::string_view) { return true; });
  EXPECT_EQ(r.error, CloudError::HttpStatus);
  EXPECT_NE(r.message.find("model overloaded"), std::string::npos);
}

TEST(CloudClient, SlowAnswerTimesOut) {
  FakeCloud f;
  f.set_mode(FakeMode::Sleep);
  f.set_sleep_ms(60000);  // held until the test ends: always past the 150 ms timeout
  CloudConfig cfg = config_for(f);
  cfg.timeout_ms = 150;
  CloudClient c(cfg);
  CloudResult r = c.complete(request("x"));
  EXPECT_EQ(r.error, CloudError::Timeout) << r.message;
  EXPECT_EQ(r.attempts, 1);  // a timeout already used the whole budget: no retry
}

TEST(CloudClient, DroppedConnectionMidStreamAndMidBody) {
  FakeCloud f;
  f.set_mode(FakeMode::Drop);
  f.set_reply("a fairly long answer that will be cut off before it ends");
  CloudClient c(config_for(f));
  std::string got;
  CloudResult r = c.stream(request("x"), [&](std::string_view d) {
    got += d;
    return true;
  });
  EXPECT_EQ(r.error, CloudError::Dropped) << r.message;
  EXPECT_TRUE(r.delivered);
  EXPECT_FALSE(got.empty());
  EXPECT_EQ(r.text, got);
  EXPECT_EQ(r.attempts, 1);  // text reached the caller: never retried
  CloudResult p = c.complete(request("x"));
  EXPECT_EQ(p.error, CloudError::Dropped) << p.message;
}

TEST(CloudClient, ConnectionRefusedIsRetriedAndClassified) {
  int port;
  {
    FakeCloud gone;
    port = gone.port();
  }
  CloudConfig cfg;
  cfg.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1/";
  cfg.max_retries = 1;
  cfg.backoff_ms = 1;
  CloudClient c(cfg);
  CloudResult r = c.complete(request("x"));
  EXPECT_EQ(r.error, CloudError::Connect) << r.message;
  EXPECT_EQ(r.attempts, 2);
  CloudClient none(CloudConfig{});
  EXPECT_EQ(none.complete(request("x")).error, CloudError::NotConfigured);
}

TEST(CloudClient, CancelFromCallback) {
  FakeCloud f;
  f.set_reply("one two three four five six seven eight nine ten");
  CloudClient c(config_for(f));
  int calls = 0;
  CloudResult r = c.stream(request("x"), [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(r.error, CloudError::Cancelled);
  EXPECT_EQ(calls, 2);
}

TEST(CloudClient, BreakerOpensAndShortCircuits) {
  FakeCloud f;
  f.set_mode(FakeMode::Status500);
  int64_t now = 0;
  CircuitBreaker br({2, 10000}, [&] { return now; });
  CloudConfig cfg = config_for(f);
  cfg.max_retries = 0;
  CloudClient c(cfg, &br);
  EXPECT_EQ(c.complete(request("x")).error, CloudError::HttpStatus);
  EXPECT_EQ(c.complete(request("x")).error, CloudError::HttpStatus);
  EXPECT_EQ(br.state(), BreakerState::Open);
  CloudResult r = c.complete(request("x"));
  EXPECT_EQ(r.error, CloudError::CircuitOpen);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(f.requests(), 2);
  // After the cool-down a probe goes out; success closes the circuit.
  now += 10000;
  f.set_mode(FakeMode::Normal);
  EXPECT_TRUE(c.complete(request("x")).ok());
  EXPECT_EQ(br.state(), BreakerState::Closed);
  // A 4xx is the caller's fault, not the endpoint's: it does not count against health.
  f.set_mode(FakeMode::Status400);
  for (int i = 0; i < 3; ++i) c.complete(request("x"));
  EXPECT_EQ(br.state(), BreakerState::Closed);
}

TEST(SseParser, SplitAtEveryByteGivesSameResult) {
  std::string stream =
      ": keep-alive\r\n\r\n"
      "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n"
      "event: message\ndata: {\"choices\":[{\"delta\":{\"content\":\"你好\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\", [EM\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"AIL_1]\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    SseParser p;
    std::string text;
    DeltaFn f = [&](std::string_view d) {
      text += d;
      return true;
    };
    ASSERT_TRUE(p.feed(stream.substr(0, cut), f));
    ASSERT_TRUE(p.feed(stream.substr(cut), f));
    ASSERT_TRUE(p.finish(f));
    EXPECT_EQ(text, "你好, [EMAIL_1]");
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.finish_reason(), "stop");
    EXPECT_EQ(p.prompt_tokens(), 5);
    EXPECT_EQ(p.completion_tokens(), 3);
  }
}

TEST(SseParser, MalformedEventAndMultiLineData) {
  SseParser p;
  DeltaFn f = [](std::string_view) { return true; };
  // Two data lines form one event joined by '\n'.
  ASSERT_TRUE(p.feed("data: {\"choices\":\ndata: []}\n\n", f));
  EXPECT_FALSE(p.feed("data: {oops}\n\n", f));
  EXPECT_NE(p.error().find("malformed"), std::string::npos);
  SseParser q;
  EXPECT_FALSE(q.feed("data: {\"choices\": 5}\n\n", f));
}

TEST(SseParser, ToolCallFragmentsAreMerged) {
  SseParser p;
  DeltaFn f = [](std::string_view) { return true; };
  ASSERT_TRUE(p.feed(
      "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\": \"}}]}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"[PLATE_1]\\\"}\"}}]},"
      "\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
      f));
  ASSERT_TRUE(p.tool_calls().is_array());
  ASSERT_EQ(p.tool_calls().size(), 1u);
  EXPECT_EQ(p.tool_calls()[0]["id"], "call_1");
  EXPECT_EQ(p.tool_calls()[0]["function"]["name"], "get_weather");
  EXPECT_EQ(p.tool_calls()[0]["function"]["arguments"], "{\"city\": \"[PLATE_1]\"}");
  EXPECT_EQ(p.finish_reason(), "tool_calls");
}

TEST(CloudClient, ThrowFromDeltaCallbackReachesTheCallerNotLibcurl) {
  // libcurl is C: the exception is held while the transfer is aborted, then rethrown.
  FakeCloud f;
  CloudClient c(config_for(f));
  int calls = 0;
  EXPECT_THROW(c.stream(request("x"), [&](std::string_view) -> bool {
    ++calls;
    throw std::runtime_error("client write failed");
  }), std::runtime_error);
  EXPECT_EQ(calls, 1);  // aborted at the first delta, not retried
  // The client is still usable.
  CloudResult r = c.stream(request("again"), [](std::string_view) { return true; });
  EXPECT_TRUE(r.ok()) << r.message;
}
