#pragma once
// One generation on the scheduler, waited for on the calling (HTTP) thread: the shared piece of
// the plain server path and of the hybrid path (where the orchestrator's DeviceBackend runs it).
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "runtime/scheduler.h"
#include "server/request.h"

namespace edgellm::server {

struct ServerState;
class ModelLease;

// The client went away while its answer was being generated (the job is cancelled).
struct ClientGone : std::runtime_error {
  ClientGone() : std::runtime_error("the client closed the connection") {}
};

using PieceFn = std::function<bool(const std::string&)>;
using LogprobsFn = std::function<void(const std::vector<sampling::PositionLogprobs>&)>;

// Wakes one waiter on several jobs (n choices streamed together).
struct JobNotify {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t events = 0;
  void ping() {
    {
      std::lock_guard<std::mutex> lk(mu);
      ++events;
    }
    cv.notify_all();
  }
};

struct JobChannel;

// One submitted generation on the leased model's scheduler (the lease is kept while this lives).
// The constructor queues it (throws ApiError: 400 prompt too long for a slot, 429 queue full);
// wait() blocks until it finishes.
class LocalJob {
 public:
  // seed_offset: added to the sampling seed (choice i of n runs with seed + i).
  LocalJob(ServerState& st, std::shared_ptr<ModelLease> model, const GenerateRequest& g, bool stream_text,
           uint64_t seed_offset = 0, std::shared_ptr<JobNotify> notify = nullptr);
  ~LocalJob();  // cancels a job nobody waited for
  // Text pieces go to `on_piece` (when set) on this thread; false from it cancels the job and
  // throws ClientGone. `alive` (when set) is polled while nothing arrives; false cancels too.
  // Throws ApiError 500 (400 for a request-caused failure) when the generation failed.
  // Log-probabilities (streams asking for them) go to `on_lps` before the text they belong to.
  runtime::JobOutcome wait(const PieceFn* on_piece, const std::function<bool()>& alive,
                           const LogprobsFn* on_lps = nullptr);
  // Without blocking: hands over what arrived and returns the outcome once the job is done
  // (errors as wait()). False from on_piece cancels and throws ClientGone.
  std::optional<runtime::JobOutcome> poll(const PieceFn* on_piece, const LogprobsFn* on_lps);
  void cancel() { job_->cancel(); }

 private:
  std::shared_ptr<ModelLease> model_;  // declared first: released after the job is cancelled
  std::shared_ptr<JobChannel> ch_;
  std::shared_ptr<runtime::Job> job_;
  bool waited_ = false;
};

}  // namespace edgellm::server
