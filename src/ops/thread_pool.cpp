#include "ops/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#ifdef __linux__
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EDGELLM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define EDGELLM_PAUSE() asm volatile("yield")
#else
#define EDGELLM_PAUSE() ((void)0)
#endif

namespace edgellm::ops {
namespace {
// How long an idle thread spins before sleeping. Decode issues a region every few
// microseconds, so a short spin avoids a futex wake-up (~5-20 us) per region.
constexpr auto kSpin = std::chrono::microseconds(300);

// Spins until done() or kSpin has passed (then returns done()). While may_yield() holds, after
// the first 2048 pauses each round yields the CPU, so that when pool threads outnumber the CPUs
// (one oversized pool, or several pools busy at once) the thread we wait for gets to run.
// Otherwise only pauses: a yield on a CPU that lower-priority (niced) jobs share handed the core
// to one of them until the next scheduler tick, and the caller, not finding the worker, ran the
// worker's chunks itself. At depth, where decode's attention region is one chunk per KV head,
// that serialised attention (Qwen2.5-1.5B q8_0 d16384, 2 threads beside niced builds: 15.0-16.3
// t/s with yields, 22.0-22.5 without). may_yield() is asked again every 256 rounds: a thread that
// began spinning while its pool had the CPUs to itself must yield once another pool's region
// starts.
template <typename Pred, typename MayYield>
bool spin_until(Pred done, MayYield may_yield) {
  const auto start = std::chrono::steady_clock::now();
  bool yielding = may_yield();
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (i < 2048 || !yielding)
      EDGELLM_PAUSE();
    else
      std::this_thread::yield();
    if ((i & 255) == 255) {
      if (std::chrono::steady_clock::now() - start > kSpin) return done();
      yielding = may_yield();
    }
  }
}

// CPUs this process may run on (its affinity mask where the system reports one), read once.
int usable_cpus() {
  static const int n = [] {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  }();
  return n;
}

// Threads of every pool in this process that are inside a parallel region now. Two pools
// (a server's models, serving beside a fine-tuning job, a process with an embedder) can each
// fit the CPUs and together outnumber them; their waiters must then yield, as one oversized
// pool's do.
std::atomic<int> g_threads_in_regions{0};

// Counts a pool's threads into g_threads_in_regions for the lifetime of one region.
class RegionCount {
 public:
  explicit RegionCount(int n) : n_(n) { g_threads_in_regions.fetch_add(n_, std::memory_order_relaxed); }
  ~RegionCount() { g_threads_in_regions.fetch_sub(n_, std::memory_order_relaxed); }
  RegionCount(const RegionCount&) = delete;
  RegionCount& operator=(const RegionCount&) = delete;

 private:
  int n_;
};
}  // namespace

int ThreadPool::threads_in_regions() { return g_threads_in_regions.load(std::memory_order_relaxed); }

bool ThreadPool::oversubscribed() const {
  const int cpus = usable_cpus();
  return n_threads_ > cpus || g_threads_in_regions.load(std::memory_order_relaxed) > cpus;
}

int ThreadPool::physical_cores() {
  // Distinct (package, core) pairs among online CPUs; SMT siblings share a core id.
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < 4096; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
    if (!core) {
      if (cpu > 0 && cores.empty()) break;
      if (!cores.empty()) break;
      continue;
    }
    std::string c, p;
    core >> c;
    pkg >> p;
    cores.emplace(p, c);
  }
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  int n = static_cast<int>(cores.size());
  if (n <= 0) n = hw;
  if (hw > 0) n = std::min(n, hw);  // cgroup/affinity may restrict what we can run on
  return std::max(1, n);
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads > 0 ? n_threads : physical_cores()), shares_(new Share[n_threads_]) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; },
                    [this] { return oversubscribed(); })) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      cv_start_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    const uint64_t g = generation_.load(std::memory_order_acquire);
    seen = g;
    if (stop_.load()) return;
    if (run_gen_.load(std::memory_order_acquire) != g) {
      // A chunked region: join only if it is still open; the caller may have finished it.
      active_.fetch_add(1);
      if (open_gen_.load() == g) claim_chunks(index);
      active_.fetch_sub(1);
      continue;
    }
    try {
      (*job_)(index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

namespace {
constexpr uint64_t pack_range(int64_t front, int64_t back) {
  return static_cast<uint64_t>(front) << 32 | static_cast<uint64_t>(back);
}
}  // namespace

bool ThreadPool::claim(int share, bool from_back, int64_t& chunk) {
  std::atomic<uint64_t>& r = shares_[share].range;
  uint64_t v = r.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t front = static_cast<int64_t>(v >> 32), back = static_cast<int64_t>(v & 0xffffffffu);
    if (front >= back) return false;
    const uint64_t next = from_back ? pack_range(front, back - 1) : pack_range(front + 1, back);
    if (r.compare_exchange_weak(v, next, std::memory_order_acq_rel)) {
      chunk = from_back ? back - 1 : front;
      return true;
    }
  }
}

void ThreadPool::claim_chunks(int index) {
  try {
    int64_t c;
    while (claim(index, false, c)) (*chunk_fn_)(c, index);
    // Own share done: help the others from the back of their shares, nearest thread first.
    for (int k = 1; k < n_threads_; ++k) {
      const int victim = (index + k) % n_threads_;
      while (claim(victim, true, c)) (*chunk_fn_)(c, index);
    }
  } catch (...) {
    for (int i = 0; i < n_threads_; ++i) shares_[i].range.store(0);  // stop handing out work
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run_chunks(int64_t n_chunks, const std::function<void(int64_t, int)>& fn) {
  if (n_chunks <= 0) return;
  regions_.fetch_add(1, std::memory_order_relaxed);
  const RegionCount counted(n_chunks == 1 ? 1 : n_threads_);
  if (n_threads_ == 1 || n_chunks == 1) {
    for (int64_t c = 0; c < n_chunks; ++c) fn(c, 0);
    return;
  }
  if (n_chunks >= (int64_t{1} << 31)) throw std::length_error("run_chunks: too many chunks");
  chunk_fn_ = &fn;
  for (int i = 0; i < n_threads_; ++i)
    shares_[i].range.store(pack_range(n_chunks * i / n_threads_, n_chunks * (i + 1) / n_threads_),
                           std::memory_order_relaxed);
  const uint64_t g = generation_.load() + 1;
  open_gen_.store(g);
  generation_.fetch_add(1);  // seq_cst: pairs with the sleepers_ increment in worker()
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_start_.notify_all();
  }
  claim_chunks(0);
  // Close the region, then wait only for workers already inside it.
  open_gen_.store(0);
  if (!spin_until([&] { return active_.load() == 0; }, [this] { return oversubscribed(); }))
    while (active_.load() != 0) std::this_thread::yield();
  chunk_fn_ = nullptr;
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(err, error_);
  }
  if (err) std::rethrow_exception(err);
}

void ThreadPool::wait_done() {
  if (spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; },
                 [this] { return oversubscribed(); }))
    return;
  std::unique_lock<std::mutex> lock(mu_);
  caller_sleeping_.store(true);
  cv_done_.wait(lock, [&] { return pending_.load() == 0; });
  caller_sleeping_.store(false);
}

void ThreadPool::run(const std::function<void(int)>& fn) {
  regions_.fetch_add(1, std::memory_order_relaxed);
  const RegionCount counted(n_threads_);
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  run_gen_.store(generation_.load() + 1);
  generation_.fetch_add(1);  // seq_cst: pairs with the sleepers_ increment in worker()
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_start_.notify_all();
  }
  std::exception_ptr mine;
  try {
    fn(0);
  } catch (...) {
    mine = std::current_exception();
  }
  wait_done();
  job_ = nullptr;
  std::exception_ptr theirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(theirs, error_);
  }
  if (mine) std::rethrow_exception(mine);
  if (theirs) std::rethrow_exception(theirs);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  // A few chunks per thread, so a late or slow thread costs little.
  const int64_t chunks = std::min<int64_t>(n, static_cast<int64_t>(n_threads_) * 4);
  run_chunks(chunks, [&](int64_t c, int t) { fn(n * c / chunks, n * (c + 1) / chunks, t); });
}

}  // namespace edgellm::ops
