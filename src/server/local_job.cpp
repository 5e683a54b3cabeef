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

LocalJob::LocalJob(ServerState& st, std::shared_ptr<ModelLease> model, const GenerateRequest& g, bool stream_text)
    : model_(std::move(model)), ch_(std::make_shared<JobChannel>()) {
  runtime::JobRequest jr;
  jr.prompt = g.prompt;
  jr.params = g.params;
  jr.lora = g.lora;
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

runtime::JobOutcome LocalJob::wait(const PieceFn* on_piece, const std::function<bool()>& alive) {
  waited_ = true;
  // on_done always runs (a cancelled job finishes early), so these waits end.
  auto give_up = [&] {
    job_->cancel();
    std::unique_lock<std::mutex> lk(ch_->mu);
    ch_->cv.wait(lk, [&] { return ch_->outcome.has_value(); });
    throw ClientGone();
  };
  for (;;) {
    std::string text;
    std::optional<runtime::JobOutcome> outcome;
    {
      std::unique_lock<std::mutex> lk(ch_->mu);
      ch_->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return !ch_->text.empty() || ch_->outcome; });
      text.swap(ch_->text);
      if (ch_->outcome) outcome = std::move(*ch_->outcome);
    }
    if (!text.empty() && on_piece && !(*on_piece)(text)) give_up();
    if (outcome) {
      if (!outcome->error.empty())
        throw ApiError(outcome->client_error ? 400 : 500, "generation failed: " + outcome->error, "",
                       "generation_failed");
      return std::move(*outcome);
    }
    if (text.empty() && alive && !alive()) give_up();
  }
}

}  // namespace edgellm::server
