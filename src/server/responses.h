#pragma once
// OpenAI response bodies for one generation, whoever produced it (the device or, through the
// hybrid orchestrator, the cloud): the whole JSON answer and the SSE chunk stream.
#include <cstdint>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "sampling/logprobs.h"
#include "server/api_error.h"
#include "server/request.h"
#include "server/tool_calls.h"

namespace edgellm::server {

// What the client gets, independent of the tier that answered.
struct Answer {
  std::string text;
  std::string finish_reason = "stop";
  bool local = true;                // the device answered (tier "local"), else the cloud
  ojson cloud_tool_calls;           // cloud answers: OpenAI tool_calls as received (null: none)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  ojson timings;                    // device generations (null otherwise)
  ojson route;                      // RouteRecord when a policy routed the request (null otherwise)
  int32_t index = 0;                // the choice's index (n > 1)
  std::vector<sampling::PositionLogprobs> logprobs;         // generated tokens' (request logprobs)
  std::vector<sampling::PositionLogprobs> prompt_logprobs;  // prompt positions 1.. (echo)
};

struct ReplyCtx {
  std::string id;
  int64_t created = 0;
  std::string model_id;
  const GenerateRequest* g = nullptr;
  const tokenizer::Tokenizer* tok = nullptr;  // token strings of logprobs
};

ojson whole_json(const ReplyCtx& c, const Answer& a);
// n choices in one answer; usage adds up the completions (the prompt counts once).
ojson whole_json(const ReplyCtx& c, const std::vector<Answer>& choices);

// Writes one answer as server-sent events in OpenAI's chunk format. Every method returns false
// once the client is gone.
class StreamOut {
 public:
  StreamOut(ReplyCtx c, httplib::DataSink& sink, int32_t index = 0) : c_(std::move(c)), sink_(sink), index_(index) {}
  bool start();                         // the role chunk (and, for an echo, the prompt)
  bool delta(const std::string& text);  // content (held back while it may be a local tool call)
  // Log-probabilities of tokens generated since the last chunk: they go out with the next one.
  void add_logprobs(const std::vector<sampling::PositionLogprobs>& lps);
  // Tool calls or held-back text, the finish chunk (tier, route, timings), usage, then `error`
  // as an error event if given, and [DONE].
  bool finish(const Answer& a, const ApiError* error = nullptr);
  // finish() in two parts, for n choices in one stream: each choice's end, then the stream's.
  bool finish_choice(const Answer& a);
  bool close(int64_t prompt_tokens, int64_t completion_tokens, const ApiError* error = nullptr);
  // An error event then [DONE] (the stream ends).
  void fail(const ApiError& e, const ojson& route = nullptr);
  // An error event after which a replacement answer follows in the same stream (`restart`).
  bool interrupt(const std::string& message, const ojson& route);
  bool alive() const { return sink_.is_writable(); }

 private:
  ojson chunk(ojson delta, ojson reason);
  ojson take_logprobs(const std::string& text);
  ojson content_chunk(const std::string& s);
  bool send(const ojson& j);
  bool raw(const std::string& s);

  ReplyCtx c_;
  httplib::DataSink& sink_;
  ToolStreamFilter filter_;
  std::string sent_text_;  // content the client got for the current answer
  int32_t index_ = 0;
  std::vector<sampling::PositionLogprobs> pending_lps_;
  size_t lp_offset_ = 0;   // completions: code points of the choice's text already covered
};

ojson usage_json(int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace edgellm::server
