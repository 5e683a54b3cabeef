#include "ops/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <stdexcept>
#include <vector>

using edgellm::ops::ThreadPool;

TEST(ThreadPool, PhysicalCoresPositive) { EXPECT_GE(ThreadPool::physical_cores(), 1); }

TEST(ThreadPool, DefaultSizeIsPhysicalCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.size(), ThreadPool::physical_cores());
}

TEST(ThreadPool, RunVisitsEveryThreadOncePerRegion) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    ASSERT_EQ(pool.size(), n);
    std::vector<std::atomic<int>> hits(n);
    const uint64_t before = pool.regions();
    for (int r = 0; r < 1000; ++r) pool.run([&](int t) { hits[t].fetch_add(1); });
    for (int t = 0; t < n; ++t) EXPECT_EQ(hits[t].load(), 1000) << "thread " << t << " of " << n;
    EXPECT_EQ(pool.regions() - before, 1000u);
  }
}

TEST(ThreadPool, CallerIsThreadZero) {
  ThreadPool pool(3);
  const auto me = std::this_thread::get_id();
  std::thread::id seen0;
  pool.run([&](int t) {
    if (t == 0) seen0 = std::this_thread::get_id();
  });
  EXPECT_EQ(seen0, me);
}

TEST(ThreadPool, ParallelForCoversRangeExactlyOnce) {
  for (int n : {1, 2, 3}) {
    ThreadPool pool(n);
    for (int64_t len : {0, 1, 2, 3, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(len));
      pool.parallel_for(len, [&](int64_t b, int64_t e, int t) {
        EXPECT_LE(b, e);
        EXPECT_LT(t, n);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < len; ++i) ASSERT_EQ(hits[i].load(), 1) << "i=" << i << " len=" << len;
    }
  }
}

TEST(ThreadPool, WakesAfterSleeping) {
  // Long enough idle gap that workers fall back to the condition variable.
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  for (int r = 0; r < 3; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pool.run([&](int t) { sum.fetch_add(t + 1); });
  }
  EXPECT_EQ(sum.load(), 3 * (1 + 2));
}

TEST(ThreadPool, PropagatesWorkerException) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run([](int t) {
    if (t == 1) throw std::runtime_error("boom");
  }),
               std::runtime_error);
  // The pool stays usable.
  std::atomic<int> n{0};
  pool.run([&](int) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 2);
}

namespace edgellm::ops {
namespace {

// Waiting threads yield the CPU only when the pool outnumbers the CPUs, otherwise they only
// pause, then sleep (thread_pool.cpp spin_until): both kinds run every chunk of many regions
// exactly once, back to back and after sleeping.
TEST(ThreadPoolChunks, EveryChunkRunsOnceWithAndWithoutYielding) {
  const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int threads : {2, hw + 1}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(2 * threads);
      pool.run_chunks(2 * threads, [&](int64_t c, int) { hits[c].fetch_add(1); });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, region " << rep;
      if (rep % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the spin
    }
  }
}

// Each region counts its pool's threads process-wide while it runs (the count that decides
// whether waiters yield when several pools are busy at once), and gives them back at its end,
// also when the region throws.
TEST(ThreadPoolChunks, RegionsCountTheirThreadsWhileRunning) {
  const int before = ThreadPool::threads_in_regions();
  ThreadPool pool(2);
  int inside = -1;
  pool.run_chunks(4, [&](int64_t c, int) {
    if (c == 0) inside = ThreadPool::threads_in_regions();
  });
  EXPECT_EQ(inside, before + 2);
  pool.run([&](int t) {
    if (t == 0) inside = ThreadPool::threads_in_regions();
  });
  EXPECT_EQ(inside, before + 2);
  EXPECT_THROW(pool.run_chunks(4, [](int64_t, int) { throw std::runtime_error("chunk failed"); }),
               std::runtime_error);
  EXPECT_EQ(ThreadPool::threads_in_regions(), before);
}

// Two pools that each fit the CPUs but together outnumber them, busy at the same time from two
// callers: every chunk of every region still runs exactly once in each.
TEST(ThreadPoolChunks, TwoBusyPoolsOutnumberingTheCpus) {
  const int hw = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int per_pool = std::max(2, hw);
  auto drive = [&](std::atomic<int>& failures) {
    ThreadPool pool(per_pool);
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(2 * per_pool);
      pool.run_chunks(2 * per_pool, [&](int64_t c, int) { hits[c].fetch_add(1); });
      for (auto& h : hits)
        if (h.load() != 1) failures.fetch_add(1);
    }
  };
  std::atomic<int> failures{0};
  std::thread other([&] { drive(failures); });
  drive(failures);
  other.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ThreadPool::threads_in_regions(), 0);
}

TEST(ThreadPoolChunks, EveryChunkRunsExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000}) {
      for (int rep = 0; rep < 50; ++rep) {
        std::vector<std::atomic<int>> hits(n);
        pool.run_chunks(n, [&](int64_t c, int t) {
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          hits[c].fetch_add(1);
        });
        for (int64_t c = 0; c < n; ++c) ASSERT_EQ(hits[c].load(), 1) << "chunk " << c << " of " << n;
      }
    }
  }
}

// Each thread runs its own contiguous share front to back (one memory stream), so with no
// stealing needed the chunks a thread ran are increasing and contiguous from its share start.
TEST(ThreadPoolChunks, ThreadsStreamTheirOwnShareInOrder) {
  ThreadPool pool(2);
  const int64_t n = 64;
  std::vector<std::vector<int64_t>> seen(2);
  std::mutex mu;
  pool.run_chunks(n, [&](int64_t c, int t) {
    std::lock_guard<std::mutex> lock(mu);
    seen[t].push_back(c);
  });
  ASSERT_FALSE(seen[0].empty());
  EXPECT_EQ(seen[0].front(), 0);  // the caller always starts at the front of share 0
  // Up to the first stolen chunk, a thread's chunks follow each other without gaps.
  for (int t = 0; t < 2; ++t)
    for (size_t i = 1; i < seen[t].size(); ++i) {
      const bool own_share = seen[t][i] >= n * t / 2 && seen[t][i] < n * (t + 1) / 2;
      if (!own_share) break;
      EXPECT_EQ(seen[t][i], seen[t][i - 1] + 1) << "thread " << t;
    }
}

// A worker that is late (descheduled) must not hold up the region: the caller runs the
// worker's share from its back, and waits only for the chunk the worker is inside.
TEST(ThreadPoolChunks, CallerTakesOverALateWorkersShare) {
  ThreadPool pool(2);
  const int64_t n = 40;
  std::vector<std::atomic<int>> hits(n);
  std::atomic<int> by_caller{0};
  // The worker's first chunk does not return until the caller has done every other chunk, so
  // the test passes only if the caller takes over the worker's share, whatever the machine's
  // speed. Without takeover it would wait forever: the 60 s cap turns that into a failure.
  pool.run_chunks(n, [&](int64_t c, int t) {
    if (t == 1) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (by_caller.load() < n - 1 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (t == 0) by_caller.fetch_add(1);
    hits[c].fetch_add(1);
  });
  for (int64_t c = 0; c < n; ++c) EXPECT_EQ(hits[c].load(), 1) << "chunk " << c;
  // The worker finishes at most its first chunk while the caller does everything else.
  EXPECT_GE(by_caller.load(), n - 1);
}

TEST(ThreadPoolChunks, InterleavesWithRunRegions) {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  for (int rep = 0; rep < 500; ++rep) {
    pool.run_chunks(5, [&](int64_t c, int) { sum.fetch_add(static_cast<int>(c)); });
    pool.run([&](int t) { sum.fetch_add(100 * (t + 1)); });
  }
  EXPECT_EQ(sum.load(), 500 * (10 + 300));
}

TEST(ThreadPoolChunks, ExceptionsPropagateAndPoolStaysUsable) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.run_chunks(16, [](int64_t c, int) {
    if (c == 7) throw std::runtime_error("chunk failed");
  }),
               std::runtime_error);
  std::atomic<int> n{0};
  pool.run_chunks(16, [&](int64_t, int) { n.fetch_add(1); });
  EXPECT_EQ(n.load(), 16);
}

}  // namespace
}  // namespace edgellm::ops
