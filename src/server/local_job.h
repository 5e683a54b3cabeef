#pragma once
// One generation on the scheduler, waited for on the calling (HTTP) thread: the shared piece of
// the plain server path and of the hybrid path (where it is the orchestrator's LocalGenerateFn).
#include <functional>
#include <memory>
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

struct JobChannel;

// One submitted generation on the leased model's scheduler (the lease is kept while this lives).
// The constructor queues it (throws ApiError: 400 prompt too long for a slot, 429 queue full);
// wait() blocks until it finishes.
class LocalJob {
 public:
  LocalJob(ServerState& st, std::shared_ptr<ModelLease> model, const GenerateRequest& g, bool stream_text);
  ~LocalJob();  // cancels a job nobody waited for
  // Text pieces go to `on_piece` (when set) on this thread; false from it cancels the job and
  // throws ClientGone. `alive` (when set) is polled while nothing arrives; false cancels too.
  // Throws ApiError 500 (400 for a request-caused failure) when the generation failed.
  runtime::JobOutcome wait(const PieceFn* on_piece, const std::function<bool()>& alive);

 private:
  std::shared_ptr<ModelLease> model_;  // declared first: released after the job is cancelled
  std::shared_ptr<JobChannel> ch_;
  std::shared_ptr<runtime::Job> job_;
  bool waited_ = false;
};

}  // namespace edgellm::server
