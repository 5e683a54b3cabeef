#include "server/local_job.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "server/api_error.h"
#include "server/model_pool.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace edgellm::server {

// Text pieces, log-probabilities and the outcome of one job, handed from the scheduler thread to
// the HTTP thread.
struct JobChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;  // pieces not yet taken
  std::vector<sampling::PositionLogprobs> lps;  // entries not yet taken
  std::optional<runtime::JobOutcome> outcome;
  std::shared_ptr<JobNotify> notify;

  void wake() {
    cv.notify_all();
    if (notify) notify->ping();
  }
  void push(const std::string& piece) {
    {
      std::lock_guard<std::mutex> lk(mu);
      text += piece;
    }
    wake();
  }
  void push_lp(const sampling::PositionLogprobs& lp) {
    std::lock_guard<std::mutex> lk(mu);
    lps.push_back(lp);  // the text that follows wakes the reader
  }
  void done(runtime::JobOutcome& o) {
    {
      std::lock_guard<std::mutex> lk(mu);
      outcome = std::move(o);
    }
    wake();
  }
};

LocalJob::LocalJob(ServerState& st, std::shared_ptr<ModelLease> model, const GenerateRequest& g, bool stream_text,
                   uint64_t seed_offset, std::shared_ptr<JobNotify> notify)
    : model_(std::move(model)), ch_(std::make_shared<JobChannel>()) {
  ch_->notify = std::move(notify);
  runtime::JobRequest jr;
  jr.prompt = g.prompt;
  jr.params = g.params;
  jr.params.sampling.seed += seed_offset;
  jr.lora = g.lora;
  jr.speculation = g.speculation;
  if (g.echo && g.logprobs >= 0) jr.prompt_logprobs = g.logprobs;
  auto ch = ch_;
  // Both run on the scheduler thread, which serves every slot: they never throw (a failed
  // hand-over cancels this job; the outcome is always delivered so wait() ends).
  if (stream_text) jr.on_text = [ch](const std::string& piece) noexcept {
    try {
      ch->push(piece);
      return true;
    } catch (...) {
      return false;
    }
  };
  if (stream_text && g.logprobs >= 0) jr.params.on_logprobs = [ch](const sampling::PositionLogprobs& lp) noexcept {
    try {
      ch->push_lp(lp);
    } catch (...) {
    }
  };
  ServerState* sp = &st;
  jr.on_done = [ch, sp](runtime::JobOutcome& o) noexcept {
    try {
      sp->metrics.generation(o.result.n_prompt, o.result.n_generated, o.ttft_seconds, o.queue_seconds,
                             o.result.decode_seconds);
    } catch (...) {
    }
    ch->done(o);
  };
  try {
    job_ = model_->model().sched->submit(std::move(jr));
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), g.chat ? "messages" : "prompt", "context_length_exceeded");
  }
  if (!job_) {
    st.metrics.rejected();
    throw ApiError(429, "The server is busy: all " + std::to_string(model_->spec().n_parallel) + " slots of '" +
                            model_->name() + "' are in use and " +
                            std::to_string(st.opts.n_queue) + " requests are waiting. Retry shortly.",
                   "", "rate_limit_exceeded");
  }
}

LocalJob::~LocalJob() {
  if (job_ && !waited_) job_->cancel();
}

std::optional<runtime::JobOutcome> LocalJob::poll(const PieceFn* on_piece, const LogprobsFn* on_lps) {
  waited_ = true;
  std::string text;
  std::vector<sampling::PositionLogprobs> lps;
  std::optional<runtime::JobOutcome> outcome;
  {
    std::lock_guard<std::mutex> lk(ch_->mu);
    text.swap(ch_->text);
    lps.swap(ch_->lps);
    if (ch_->outcome) outcome = std::move(*ch_->outcome);
    ch_->outcome.reset();
  }
  if (!lps.empty() && on_lps) (*on_lps)(lps);
  if (!text.empty() && on_piece && !(*on_piece)(text)) {
    job_->cancel();
    if (!outcome) {
      std::unique_lock<std::mutex> lk(ch_->mu);
      ch_->cv.wait(lk, [&] { return ch_->outcome.has_value(); });
    }
    throw ClientGone();
  }
  if (outcome && !outcome->error.empty())
    throw ApiError(outcome->client_error ? 400 : 500, "generation failed: " + outcome->error, "", "generation_failed");
  return outcome;
}

runtime::JobOutcome LocalJob::wait(const PieceFn* on_piece, const std::function<bool()>& alive,
                                   const LogprobsFn* on_lps) {
  waited_ = true;
  for (;;) {
    bool idle = false;
    {
      std::unique_lock<std::mutex> lk(ch_->mu);
      idle = !ch_->cv.wait_for(lk, std::chrono::milliseconds(200),
                               [&] { return !ch_->text.empty() || ch_->outcome; });
    }
    if (auto o = poll(on_piece, on_lps)) return std::move(*o);
    if (idle && alive && !alive()) {
      // on_done always runs (a cancelled job finishes early), so this wait ends.
      job_->cancel();
      std::unique_lock<std::mutex> lk(ch_->mu);
      ch_->cv.wait(lk, [&] { return ch_->outcome.has_value(); });
      throw ClientGone();
    }
  }
}

}  // namespace edgellm::server
