#pragma once
// A persistent pool: threads are created once and woken per parallel region, so decode pays
// a wake-up and a join per region, never a thread creation.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace edgellm::ops {

class ThreadPool {
 public:
  // n_threads <= 0 means the number of physical cores.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Runs fn(thread_index) on every thread (the caller is thread 0) and waits for all.
  void run(const std::function<void(int thread_index)>& fn);
  // Runs fn(chunk, thread_index) for every chunk in [0, n_chunks). Thread i owns the
  // contiguous share [n*i/T, n*(i+1)/T) and runs it front to back, so its memory reads form
  // one long stream that the prefetchers follow across chunk boundaries (with chunks claimed
  // from one shared counter, each thread jumped to a new address every chunk and small
  // matrices ran no faster on 2 threads than on 1). A thread that finishes its share takes
  // chunks from the back of the others' shares, so the caller never waits for a worker that
  // has not started (e.g. descheduled on a busy machine): it runs that share itself and waits
  // only for chunks already in progress.
  void run_chunks(int64_t n_chunks, const std::function<void(int64_t chunk, int thread_index)>& fn);
  // Splits [0, n) into contiguous ranges run through run_chunks: fn(begin, end, thread_index).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);
  // Number of parallel regions run so far (synchronisation points; for bench/counting).
  uint64_t regions() const { return regions_.load(std::memory_order_relaxed); }

  static int physical_cores();
  // Threads of all pools in this process inside a parallel region right now (each region
  // counts its pool's size from its start to its end). Waiters yield the CPU when this, or
  // their own pool's size, exceeds the CPUs the process may use.
  static int threads_in_regions();

 private:
  void worker(int index);
  void claim_chunks(int index);
  // Takes the front chunk of `share` (its owner) or the back one (a thief); false when empty.
  bool claim(int share, bool from_back, int64_t& chunk);
  void wait_done();
  bool oversubscribed() const;

  int n_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  // Workers spin on generation_ for a short while before sleeping on cv_start_; sleepers_
  // tells the caller whether a notify is needed at all (the common decode case: no).
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  // run(): the generation of the current all-threads region.
  std::atomic<uint64_t> run_gen_{0};
  // run_chunks(): the generation of the open chunked region (0 when none), its function, the
  // unclaimed chunks of each thread's share, and the number of workers inside it.
  struct alignas(64) Share {
    // Unclaimed chunks [front, back) packed as front << 32 | back: the owner takes the front,
    // thieves the back, each with one compare-exchange.
    std::atomic<uint64_t> range{0};
  };
  std::atomic<uint64_t> open_gen_{0};
  const std::function<void(int64_t, int)>* chunk_fn_ = nullptr;
  std::unique_ptr<Share[]> shares_;
  std::atomic<int> active_{0};
  std::exception_ptr error_;
  std::atomic<uint64_t> regions_{0};
};

}  // namespace edgellm::ops
