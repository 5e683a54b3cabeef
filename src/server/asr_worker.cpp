#include "server/asr_worker.h"

#include <chrono>

#include "server/api_error.h"
#include "server/local_job.h"

namespace edgellm::server {

AsrWorker::AsrWorker(int threads, int max_waiting) : pool_(threads), max_waiting_(max_waiting) {}

int AsrWorker::waiting() const {
  std::lock_guard<std::mutex> lk(mu_);
  return waiting_;
}

void AsrWorker::run(const std::function<void(ops::ThreadPool&)>& fn, const std::function<bool()>& alive) {
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (busy_) {
      if (waiting_ >= max_waiting_)
        throw ApiError(429, "The speech model is busy and its queue is full; retry shortly.", "",
                       "rate_limit_exceeded");
      ++waiting_;
      // Looks at the client every 200 ms, so one that left does not hold a place in the queue.
      while (busy_) {
        if (cv_.wait_for(lk, std::chrono::milliseconds(200), [&] { return !busy_; })) break;
        lk.unlock();
        const bool here = alive();
        lk.lock();
        if (!here) {
          --waiting_;
          throw ClientGone();
        }
      }
      --waiting_;
    }
    busy_ = true;
  }
  struct Release {
    AsrWorker* w;
    ~Release() {
      {
        std::lock_guard<std::mutex> lk(w->mu_);
        w->busy_ = false;
      }
      w->cv_.notify_all();
    }
  } release{this};
  fn(pool_);
}

}  // namespace edgellm::server
