// POST /v1/chat/completions and /v1/completions, plain and streamed (SSE).
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>

#include "server/api_error.h"
#include "server/server_impl.h"
#include "server/tool_calls.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

// Text pieces and the outcome of one job, handed from the scheduler thread to the HTTP thread.
struct JobChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;  // pieces not yet taken
  std::optional<runtime::JobOutcome> outcome;

  void push(const std::string& piece) {
    {
      std::lock_guard<std::mutex> lk(mu);
      text += piece;
    }
    cv.notify_all();
  }
  void done(runtime::JobOutcome& o) {
    {
      std::lock_guard<std::mutex> lk(mu);
      outcome = std::move(o);
    }
    cv.notify_all();
  }
};

std::string random_id(const char* prefix) { return prefix + new_call_id().substr(5); }

std::string finish_reason(const runtime::GenerateResult& r) {
  if (r.finish_reason == "length") return "length";
  return "stop";
}

ojson usage_json(const runtime::JobOutcome& o) {
  return {{"prompt_tokens", o.result.n_prompt},
          {"completion_tokens", o.result.n_generated},
          {"total_tokens", o.result.n_prompt + o.result.n_generated}};
}

ojson timings_json(const runtime::JobOutcome& o) {
  const auto& r = o.result;
  return {{"prompt_n", r.n_prompt},
          {"prompt_evaluated", r.n_prompt_evaluated},
          {"prompt_ms", r.prefill_seconds * 1e3},
          {"predicted_n", r.n_generated},
          {"predicted_ms", r.decode_seconds * 1e3},
          {"predicted_per_second", r.decode_seconds > 0 ? r.n_generated / r.decode_seconds : 0.0},
          {"queue_ms", o.queue_seconds * 1e3},
          {"ttft_ms", o.ttft_seconds * 1e3}};
}

ojson tool_calls_json(const std::vector<ToolCall>& calls, bool with_index) {
  ojson a = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    ojson c;
    if (with_index) c["index"] = i;
    c["id"] = calls[i].id;
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    a.push_back(std::move(c));
  }
  return a;
}

struct Ctx {
  ServerState* st;
  GenerateRequest g;
  std::string id, route;
  int64_t created;
  Clock::time_point t0;
};

std::shared_ptr<runtime::Job> submit(Ctx& c, const std::shared_ptr<JobChannel>& ch, bool stream) {
  runtime::JobRequest jr;
  jr.prompt = c.g.prompt;
  jr.params = c.g.params;
  if (stream) jr.on_text = [ch](const std::string& piece) { ch->push(piece); return true; };
  ServerState* st = c.st;
  jr.on_done = [ch, st](runtime::JobOutcome& o) {
    st->metrics.generation(o.result.n_prompt, o.result.n_generated, o.ttft_seconds, o.queue_seconds,
                           o.result.decode_seconds);
    ch->done(o);
  };
  std::shared_ptr<runtime::Job> job;
  try {
    job = c.st->sched->submit(std::move(jr));
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), c.g.chat ? "messages" : "prompt", "context_length_exceeded");
  }
  if (!job) {
    c.st->metrics.rejected();
    throw ApiError(429, "The server is busy: all " + std::to_string(c.st->opts.n_parallel) + " slots are in use and " +
                            std::to_string(c.st->opts.n_queue) + " requests are waiting. Retry shortly.",
                   "", "rate_limit_exceeded");
  }
  return job;
}

void respond_whole(Ctx& c, httplib::Response& res) {
  auto ch = std::make_shared<JobChannel>();
  auto job = submit(c, ch, false);
  std::unique_lock<std::mutex> lk(ch->mu);
  ch->cv.wait(lk, [&] { return ch->outcome.has_value(); });
  runtime::JobOutcome o = std::move(*ch->outcome);
  lk.unlock();
  if (!o.error.empty()) throw ApiError(500, "generation failed: " + o.error, "", "generation_failed");

  const auto& model = c.st->opts.model_id;
  ojson out = {{"id", c.id}, {"object", c.g.chat ? "chat.completion" : "text_completion"}, {"created", c.created},
               {"model", model}, {"system_fingerprint", "edgellm"}};
  std::string reason = finish_reason(o.result);
  ojson choice = {{"index", 0}};
  if (c.g.chat) {
    ojson msg = {{"role", "assistant"}, {"content", o.result.text}, {"refusal", nullptr}};
    if (c.g.parse_tools) {
      ParsedOutput p = parse_tool_output(o.result.text, c.g.tools);
      if (!p.calls.empty()) {
        msg["content"] = p.content.empty() ? ojson(nullptr) : ojson(p.content);
        msg["tool_calls"] = tool_calls_json(p.calls, false);
        reason = "tool_calls";
      }
    }
    choice["message"] = msg;
  } else {
    choice["text"] = o.result.text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = reason;
  out["choices"] = ojson::array({choice});
  out["usage"] = usage_json(o);
  out["timings"] = timings_json(o);
  out["tier"] = "local";
  send_json(res, out);
  c.st->metrics.latency(c.route, std::chrono::duration<double>(Clock::now() - c.t0).count());
}

// Streams one job as server-sent events in OpenAI's chunk format.
class StreamWriter {
 public:
  StreamWriter(Ctx c, std::shared_ptr<JobChannel> ch, std::shared_ptr<runtime::Job> job)
      : c_(std::move(c)), ch_(std::move(ch)), job_(std::move(job)) {}

  bool pump(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      if (c_.g.chat && !send(sink, chunk(ojson{{"role", "assistant"}, {"content", ""}}, nullptr))) return fail();
    }
    std::string text;
    std::optional<runtime::JobOutcome> outcome;
    {
      std::unique_lock<std::mutex> lk(ch_->mu);
      ch_->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return !ch_->text.empty() || ch_->outcome; });
      text.swap(ch_->text);
      if (ch_->outcome) outcome = std::move(*ch_->outcome);
    }
    if (!text.empty()) {
      const std::string out = c_.g.parse_tools ? filter_.feed(text) : text;
      if (!out.empty()) {
        sent_ += out.size();
        if (!send(sink, content_chunk(out))) return fail();
      }
    } else if (!outcome && !sink.is_writable()) {
      return fail();
    }
    if (outcome) return finish(sink, *outcome);
    return true;
  }

  void release() {
    job_->cancel();  // no-op when it already finished
    c_.st->metrics.latency(c_.route, std::chrono::duration<double>(Clock::now() - c_.t0).count());
  }

 private:
  ojson chunk(ojson delta, ojson reason) const {
    ojson choice = {{"index", 0}};
    if (c_.g.chat) choice["delta"] = std::move(delta);
    else choice["text"] = delta.is_string() ? delta : ojson("");
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = std::move(reason);
    ojson j = {{"id", c_.id}, {"object", c_.g.chat ? "chat.completion.chunk" : "text_completion"},
               {"created", c_.created}, {"model", c_.st->opts.model_id}, {"system_fingerprint", "edgellm"},
               {"choices", ojson::array({choice})}};
    if (c_.g.include_usage) j["usage"] = nullptr;
    return j;
  }
  ojson content_chunk(const std::string& s) const {
    return c_.g.chat ? chunk(ojson{{"content", s}}, nullptr) : chunk(ojson(s), nullptr);
  }

  static bool send(httplib::DataSink& sink, const ojson& j) {
    const std::string line =
        "data: " + j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n\n";
    return sink.write(line.data(), line.size());
  }
  bool fail() {
    job_->cancel();
    return false;
  }

  bool finish(httplib::DataSink& sink, const runtime::JobOutcome& o) {
    if (!o.error.empty()) {
      ApiError e(500, "generation failed: " + o.error, "", "generation_failed");
      const std::string line = "data: " + e.body().dump() + "\n\ndata: [DONE]\n\n";
      sink.write(line.data(), line.size());
      sink.done();
      return true;
    }
    std::string reason = finish_reason(o.result);
    const std::string& full = o.result.text;
    std::vector<ToolCall> calls;
    if (c_.g.parse_tools) calls = parse_tool_output(full, c_.g.tools).calls;
    if (!calls.empty()) {
      if (!send(sink, chunk(ojson{{"tool_calls", tool_calls_json(calls, true)}}, nullptr))) return fail();
      reason = "tool_calls";
    } else if (sent_ < full.size()) {  // text held back while it looked like a call
      if (!send(sink, content_chunk(full.substr(sent_)))) return fail();
    }
    ojson last = chunk(c_.g.chat ? ojson::object() : ojson(""), reason);
    last["timings"] = timings_json(o);
    last["tier"] = "local";
    if (!send(sink, last)) return fail();
    if (c_.g.include_usage) {
      ojson u = {{"id", c_.id}, {"object", c_.g.chat ? "chat.completion.chunk" : "text_completion"},
                 {"created", c_.created}, {"model", c_.st->opts.model_id}, {"system_fingerprint", "edgellm"},
                 {"choices", ojson::array()}, {"usage", usage_json(o)}};
      if (!send(sink, u)) return fail();
    }
    static const std::string done = "data: [DONE]\n\n";
    if (!sink.write(done.data(), done.size())) return fail();
    sink.done();
    return true;
  }

  Ctx c_;
  std::shared_ptr<JobChannel> ch_;
  std::shared_ptr<runtime::Job> job_;
  ToolStreamFilter filter_;
  size_t sent_ = 0;  // bytes of the output sent as content
  bool started_ = false;
};

void respond_stream(Ctx& c, httplib::Response& res) {
  auto ch = std::make_shared<JobChannel>();
  auto job = submit(c, ch, true);
  auto w = std::make_shared<StreamWriter>(c, ch, job);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [w](size_t, httplib::DataSink& sink) { return w->pump(sink); },
      [w](bool) { w->release(); });
}

void handle(ServerState& st, const httplib::Request& req, httplib::Response& res, bool chat) {
  Ctx c{&st, {}, random_id(chat ? "chatcmpl-" : "cmpl-"), chat ? "/v1/chat/completions" : "/v1/completions",
        static_cast<int64_t>(std::time(nullptr)), Clock::now()};
  answer_guarded(req, res, [&](const httplib::Request& r, httplib::Response& out) {
    const ojson body = parse_body(r.body);
    c.g = parse_generate(body, chat, st.gctx);
    if (c.g.stream) respond_stream(c, out);
    else respond_whole(c, out);
  });
}

}  // namespace

void register_generate_routes(ServerState& st) {
  st.http.Post("/v1/chat/completions",
               [&st](const httplib::Request& req, httplib::Response& res) { handle(st, req, res, true); });
  st.http.Post("/v1/completions",
               [&st](const httplib::Request& req, httplib::Response& res) { handle(st, req, res, false); });
  // Same routes without the version prefix, as llama.cpp's server also accepts.
  st.http.Post("/chat/completions",
               [&st](const httplib::Request& req, httplib::Response& res) { handle(st, req, res, true); });
  st.http.Post("/completions",
               [&st](const httplib::Request& req, httplib::Response& res) { handle(st, req, res, false); });
}

}  // namespace edgellm::server
