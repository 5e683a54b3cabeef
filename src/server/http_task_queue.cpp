// GrowingTaskQueue (declared in http_conn.h): a thread per waiting connection, up to a cap.
#include <algorithm>
#include <system_error>

#include "server/http_conn.h"

namespace edgellm::server {

GrowingTaskQueue::GrowingTaskQueue(size_t max_threads, size_t keep_threads, std::chrono::milliseconds idle_exit)
    : max_threads_(std::max<size_t>(1, max_threads)),
      keep_threads_(std::min(std::max<size_t>(1, keep_threads), std::max<size_t>(1, max_threads))),
      idle_exit_(idle_exit) {
  std::lock_guard<std::mutex> lk(mu_);
  while (live_ < keep_threads_) spawn_locked();  // throws if not even these can start
}

GrowingTaskQueue::~GrowingTaskQueue() { shutdown(); }

void GrowingTaskQueue::spawn_locked() {
  threads_.emplace_back([this] { work(); });
  ++live_;
}

void GrowingTaskQueue::reap_locked(std::vector<std::thread>& out) {
  for (const auto id : finished_) {
    for (auto it = threads_.begin(); it != threads_.end(); ++it) {
      if (it->get_id() == id) {
        out.push_back(std::move(*it));
        threads_.erase(it);
        break;
      }
    }
  }
  finished_.clear();
}

void GrowingTaskQueue::enqueue(std::function<void()> fn) {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lk(mu_);
    reap_locked(done);
    jobs_.push_back(std::move(fn));
    // Every waiting job gets its own thread while the cap allows; a job that finds none
    // waits for the first thread to finish its connection.
    if (jobs_.size() > idle_ && live_ < max_threads_) {
      try {
        spawn_locked();
      } catch (const std::system_error&) {
        // Out of threads for now: the job waits for a running one.
      }
    }
  }
  cv_.notify_one();
  for (auto& t : done) t.join();  // they have left work(); joining only frees them
}

void GrowingTaskQueue::work() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    ++idle_;
    const bool woken = cv_.wait_for(lk, idle_exit_, [this] { return stop_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) {
      if (stop_ || (!woken && live_ > keep_threads_)) break;
      continue;
    }
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lk.unlock();
    fn();
    lk.lock();
  }
  --live_;
  if (!stop_) finished_.push_back(std::this_thread::get_id());
}

void GrowingTaskQueue::shutdown() {
  std::list<std::thread> all;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    all.swap(threads_);
    finished_.clear();
  }
  cv_.notify_all();
  for (auto& t : all)
    if (t.joinable()) t.join();
}

size_t GrowingTaskQueue::threads() const {
  std::lock_guard<std::mutex> lk(mu_);
  return live_;
}

}  // namespace edgellm::server
