// POST /v1/chat/completions and /v1/completions, plain and streamed (SSE). With a routing policy
// (--policy / --cloud) chat requests go through the hybrid orchestrator (routes_hybrid.cpp).
#include <chrono>
#include <ctime>
#include <memory>

#include "server/generate.h"
#include "server/local_job.h"
#include "server/peer_watch.h"
#include "util/error.h"

namespace edgellm::server {

std::string finish_reason(const runtime::GenerateResult& r) {
  if (r.finish_reason == "length") return "length";
  return "stop";
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
          {"ttft_ms", o.ttft_seconds * 1e3},
          {"draft_n", r.n_drafted},
          {"draft_n_accepted", r.n_draft_accepted}};
}

Answer local_answer(const runtime::JobOutcome& o) {
  Answer a;
  a.text = o.result.text;
  a.finish_reason = finish_reason(o.result);
  a.prompt_tokens = o.result.n_prompt;
  a.completion_tokens = o.result.n_generated;
  a.timings = timings_json(o);
  a.logprobs = o.result.logprobs;
  a.prompt_logprobs = o.prompt_logprobs;
  return a;
}

namespace {

std::string random_id(const char* prefix) { return prefix + new_call_id().substr(5); }

// The device's answer, saying how many of the oldest messages the context shift left out.
Answer device_answer(const GenCtx& c, const runtime::JobOutcome& o) {
  Answer a = local_answer(o);
  if (c.g.messages_dropped > 0) a.timings["messages_dropped"] = c.g.messages_dropped;
  return a;
}

void respond_local(GenCtx& c, const httplib::Request& req, httplib::Response& res) {
  const auto n = static_cast<size_t>(c.g.n);
  if (!c.g.stream) {
    // n choices run side by side in the model's scheduler (each its own sequence), all queued first.
    std::vector<std::unique_ptr<LocalJob>> jobs;
    for (size_t i = 0; i < n; ++i) jobs.push_back(std::make_unique<LocalJob>(*c.st, c.model, c.g, false, i));
    // Nothing is written until the answer is complete, so watch the socket itself: a client
    // that hangs up cancels its generation and frees the slot.
    const PeerWatch peer(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
    try {
      std::vector<Answer> answers;
      for (size_t i = 0; i < n; ++i) {
        answers.push_back(device_answer(c, jobs[i]->wait(nullptr, [&peer] { return peer.alive(); })));
        answers.back().index = static_cast<int32_t>(i);
      }
      send_json(res, whole_json(c.reply(), answers));
    } catch (const ClientGone& e) {
      send_error(res, 499, e.what(), "", "client_closed_request");  // nobody reads it; logs do
    }
    c.done();
    return;
  }
  // Submitted before the headers go out, so a full queue or a too-long prompt is a 429 / 400.
  auto notify = std::make_shared<JobNotify>();
  auto jobs = std::make_shared<std::vector<std::unique_ptr<LocalJob>>>();
  for (size_t i = 0; i < n; ++i) jobs->push_back(std::make_unique<LocalJob>(*c.st, c.model, c.g, true, i, notify));
  auto cp = std::make_shared<GenCtx>(std::move(c));
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [cp, jobs, notify](size_t, httplib::DataSink& sink) {
        // httplib calls this outside its handler's try: anything thrown here would end the
        // worker thread and so the process. Every failure becomes an error event.
        std::vector<std::unique_ptr<StreamOut>> outs;
        for (size_t i = 0; i < jobs->size(); ++i)
          outs.push_back(std::make_unique<StreamOut>(cp->reply(), sink, static_cast<int32_t>(i)));
        StreamOut& out = *outs[0];
        try {
          for (auto& o : outs)
            if (!o->start()) return false;
          if (jobs->size() == 1) {
            PieceFn piece = [&out](const std::string& t) { return out.delta(t); };
            LogprobsFn lps = [&out](const std::vector<sampling::PositionLogprobs>& l) { out.add_logprobs(l); };
            return out.finish(device_answer(*cp, (*jobs)[0]->wait(&piece, [&out] { return out.alive(); }, &lps)));
          }
          // n choices: whatever any of them produced goes out as it arrives, each with its index.
          std::vector<bool> done(jobs->size(), false);
          size_t left = jobs->size();
          int64_t prompt_tokens = 0, completion_tokens = 0;
          uint64_t seen = 0;
          while (left > 0) {
            {
              std::unique_lock<std::mutex> lk(notify->mu);
              notify->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return notify->events != seen; });
              seen = notify->events;
            }
            for (size_t i = 0; i < jobs->size(); ++i) {
              if (done[i]) continue;
              StreamOut& o = *outs[i];
              PieceFn piece = [&o](const std::string& t) { return o.delta(t); };
              LogprobsFn lps = [&o](const std::vector<sampling::PositionLogprobs>& l) { o.add_logprobs(l); };
              auto outcome = (*jobs)[i]->poll(&piece, &lps);
              if (!outcome) continue;
              Answer a = device_answer(*cp, *outcome);
              a.index = static_cast<int32_t>(i);
              prompt_tokens = a.prompt_tokens;
              completion_tokens += a.completion_tokens;
              if (!o.finish_choice(a)) throw ClientGone();
              done[i] = true;
              --left;
            }
            if (left > 0 && !out.alive()) throw ClientGone();
          }
          return out.close(prompt_tokens, completion_tokens);
        } catch (const ClientGone&) {
          for (auto& j : *jobs) j->cancel();
          return false;
        } catch (const ApiError& e) {
          for (auto& j : *jobs) j->cancel();
          out.fail(e);
        } catch (const std::exception& e) {
          for (auto& j : *jobs) j->cancel();
          out.fail(ApiError(500, std::string("internal error: ") + e.what()));
        } catch (...) {
          for (auto& j : *jobs) j->cancel();
          out.fail(ApiError(500, "internal error"));
        }
        return true;
      },
      [cp](bool) { cp->done(); });
}

void handle(ServerState& st, const httplib::Request& req, httplib::Response& res, bool chat) {
  GenCtx c;
  c.st = &st;
  c.id = random_id(chat ? "chatcmpl-" : "cmpl-");
  c.route = chat ? "/v1/chat/completions" : "/v1/completions";
  c.created = static_cast<int64_t>(std::time(nullptr));
  c.t0 = Clock::now();
  answer_guarded(req, res, [&](const httplib::Request& r, httplib::Response& out) {
    const ojson body = parse_body(r.body);
    const bool hybrid = chat && st.orch;
    c.model = acquire_model(st, body, r);
    // A prompt beyond the local context may still go to the cloud (route context_overflow).
    c.g = parse_generate(body, chat, c.model->model().gctx, /*check_context=*/!hybrid);
    if (hybrid && (c.g.n > 1 || c.g.logprobs >= 0))
      throw ApiError(400, std::string(c.g.n > 1 ? "\"n\" > 1" : "\"logprobs\"") +
                              " is not supported under a routing policy (the answer may come from the cloud)",
                     c.g.n > 1 ? "n" : "logprobs", "unsupported_parameter");
    if (c.g.verify_max > 0) {
      if (!hybrid)
        throw ApiError(400, "\"speculative\".mode \"cloud\" needs chat completions on a server with a routing policy "
                            "(serve --policy / --cloud)", "speculative", "invalid_value");
      if (c.g.params.sampling.temperature > 0.0f)
        throw ApiError(400, "\"speculative\".mode \"cloud\" verifies greedy answers: set \"temperature\": 0",
                       "speculative", "invalid_value");
      if (c.g.params.constraint || c.g.tools.active())
        throw ApiError(400, "\"speculative\".mode \"cloud\" does not combine with tools or response_format",
                       "speculative", "unsupported_parameter");
    }
    if (c.g.stream && c.g.echo && c.g.logprobs >= 0)
      throw ApiError(400, "\"echo\" with \"logprobs\" is not supported when streaming", "echo",
                     "unsupported_parameter");
    if (hybrid) respond_hybrid(c, r, out);
    else respond_local(c, r, out);
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
