// Response bodies without a model: whole answers and SSE streams from either tier (local tool
// calls parsed from text, cloud tool calls passed through), the finish chunk's tier and route,
// the restart event of an interrupted cloud stream, and error events before [DONE].
#include <gtest/gtest.h>

#include "server/responses.h"

namespace edgellm::server {
namespace {

const ojson kWeather = ojson::parse(R"({"type": "function", "function": {"name": "get_weather",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");

struct Sink {
  httplib::DataSink sink;
  std::string out;
  bool done = false;
  bool writable = true;
  Sink() {
    sink.write = [this](const char* d, size_t n) {
      if (!writable) return false;
      out.append(d, n);
      return true;
    };
    sink.done = [this] { done = true; };
    sink.is_writable = [this] { return writable; };
  }
  // The JSON payloads in order; "[DONE]" as a string.
  std::vector<ojson> events() const {
    std::vector<ojson> ev;
    size_t pos = 0;
    while ((pos = out.find("data: ", pos)) != std::string::npos) {
      size_t end = out.find("\n\n", pos);
      std::string data = out.substr(pos + 6, end - pos - 6);
      ev.push_back(data == "[DONE]" ? ojson("[DONE]") : ojson::parse(data));
      pos = end + 2;
    }
    return ev;
  }
};

GenerateRequest chat_request(bool tools) {
  GenerateRequest g;
  g.chat = true;
  if (tools) {
    g.tools = parse_tool_config(ojson{{"tools", {kWeather}}});
    g.parse_tools = true;
  }
  return g;
}

ReplyCtx ctx(const GenerateRequest& g) { return {"chatcmpl-1", 1700000000, "edge", &g}; }

TEST(WholeJson, LocalAnswerParsesToolCallsFromText) {
  auto g = chat_request(true);
  Answer a;
  a.text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  a.prompt_tokens = 10;
  a.completion_tokens = 5;
  ojson j = whole_json(ctx(g), a);
  const auto& msg = j["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["tier"], "local");
  EXPECT_FALSE(j.contains("route"));
  EXPECT_EQ(j["usage"]["total_tokens"], 15);
}

TEST(WholeJson, CloudToolCallsPassThroughAndRouteIsReported) {
  auto g = chat_request(true);
  Answer a;
  a.local = false;
  a.cloud_tool_calls = ojson::parse(R"([{"function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}])");
  a.route = {{"tier", "cloud"}, {"reason", "capability"}};
  a.prompt_tokens = -1;  // the endpoint did not say
  ojson j = whole_json(ctx(g), a);
  const auto& tc = j["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(tc["type"], "function");
  EXPECT_TRUE(tc["id"].is_string() && !tc["id"].get<std::string>().empty());
  EXPECT_EQ(tc["function"]["arguments"], "{\"city\":\"Oslo\"}");
  EXPECT_EQ(j["tier"], "cloud");
  EXPECT_EQ(j["route"]["reason"], "capability");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 0);
  EXPECT_FALSE(j.contains("timings"));
  // Text that merely looks like a call is not parsed for cloud answers.
  a.cloud_tool_calls = nullptr;
  a.text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"X\"}}\n</tool_call>";
  EXPECT_EQ(whole_json(ctx(g), a)["choices"][0]["message"]["content"], a.text);
}

TEST(StreamOut, ChunksThenFinishWithTierRouteUsageAndDone) {
  auto g = chat_request(false);
  g.include_usage = true;
  Sink s;
  StreamOut out(ctx(g), s.sink);
  ASSERT_TRUE(out.start());
  ASSERT_TRUE(out.delta("Hel"));
  ASSERT_TRUE(out.delta("lo"));
  Answer a;
  a.text = "Hello";
  a.local = false;
  a.completion_tokens = 2;
  a.route = {{"tier", "cloud"}};
  ASSERT_TRUE(out.finish(a));
  EXPECT_TRUE(s.done);
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(ev[1]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_EQ(ev[3]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(ev[3]["tier"], "cloud");
  EXPECT_EQ(ev[3]["route"]["tier"], "cloud");
  EXPECT_EQ(ev[4]["usage"]["completion_tokens"], 2);
  EXPECT_EQ(ev[5], "[DONE]");
}

TEST(StreamOut, InterruptRestartsTheAnswerAndErrorsComeBeforeDone) {
  auto g = chat_request(false);
  Sink s;
  StreamOut out(ctx(g), s.sink);
  out.start();
  out.delta("cloud text that broke");
  ASSERT_TRUE(out.interrupt("connection dropped", nullptr));
  out.delta("device");
  Answer a;
  a.text = "device";
  ASSERT_TRUE(out.finish(a));
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[2]["error"]["code"], "cloud_stream_interrupted");
  EXPECT_EQ(ev[2]["restart"], true);
  EXPECT_EQ(ev[3]["choices"][0]["delta"]["content"], "device");
  EXPECT_EQ(ev[4]["tier"], "local");  // nothing re-sent: the text after the restart is complete

  Sink s2;
  StreamOut out2(ctx(g), s2.sink);
  out2.start();
  Answer broken;
  broken.local = false;
  broken.finish_reason = "error";
  ApiError e(502, "cloud answer interrupted", "", "cloud_stream_interrupted");
  ASSERT_TRUE(out2.finish(broken, &e));
  auto ev2 = s2.events();
  ASSERT_EQ(ev2.size(), 4u);
  EXPECT_EQ(ev2[1]["choices"][0]["finish_reason"], "error");
  EXPECT_EQ(ev2[2]["error"]["message"], "cloud answer interrupted");
  EXPECT_EQ(ev2[3], "[DONE]");
}

TEST(StreamOut, HeldBackToolLikeTextIsFlushedAndGoneClientIsReported) {
  auto g = chat_request(true);
  Sink s;
  StreamOut out(ctx(g), s.sink);
  out.start();
  out.delta("Answer: <tool");  // may be the start of a call: held back
  Answer a;
  a.text = "Answer: <tool";
  ASSERT_TRUE(out.finish(a));
  std::string content;
  for (const auto& e : s.events())
    if (e.is_object() && e.contains("choices") && e["choices"][0]["delta"].contains("content"))
      content += e["choices"][0]["delta"]["content"].get<std::string>();
  EXPECT_EQ(content, "Answer: <tool");

  Sink gone;
  StreamOut o2(ctx(g), gone.sink);
  gone.writable = false;
  EXPECT_FALSE(o2.start());
  EXPECT_FALSE(o2.alive());
}

}  // namespace
}  // namespace edgellm::server
