#pragma once
// The speech model's thread pool (serve --asr-model): transcriptions run one at a time on a pool
// of their own, beside the chat schedulers' pools. The OS shares the cores between the pools, so
// a chat slows down while a transcription runs but is never held up by it (docs/server.md,
// "Speech to text").
#include <condition_variable>
#include <functional>
#include <mutex>

#include "ops/thread_pool.h"

namespace edgellm::server {

class AsrWorker {
 public:
  // threads <= 0: the physical cores. max_waiting: transcriptions that may wait for the pool.
  AsrWorker(int threads, int max_waiting);
  // Runs fn(pool) once the pool is free. ApiError 429 when max_waiting requests wait already;
  // `alive` is asked while waiting (false: give up, ClientGone).
  void run(const std::function<void(ops::ThreadPool&)>& fn, const std::function<bool()>& alive);
  int threads() const { return pool_.size(); }
  int waiting() const;  // requests waiting for the pool now

 private:
  ops::ThreadPool pool_;
  const int max_waiting_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false;
  int waiting_ = 0;
};

}  // namespace edgellm::server
