// AsrWorker (server/asr_worker.h): one transcription at a time on the speech pool, a bounded
// queue (429 beyond it), a waiting client that leaves gives up its place, and an exception from
// the work frees the pool. Deterministic: the running job holds a latch, no sleeps decide.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>

#include "server/api_error.h"
#include "server/asr_worker.h"
#include "server/local_job.h"

namespace edgellm::server {
namespace {

void wait_for_waiters(const AsrWorker& w, int n) {
  while (w.waiting() != n) std::this_thread::yield();
}

TEST(AsrWorker, OneAtATimeThenTheQueueIsFull) {
  AsrWorker w(2, 1);
  EXPECT_EQ(w.threads(), 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> running{0}, most{0}, ran{0};
  auto job = [&](ops::ThreadPool& pool) {
    const int now = ++running;
    most = std::max(most.load(), now);
    EXPECT_EQ(pool.size(), 2);
    released.wait();
    --running;
    ++ran;
  };
  auto first = std::async(std::launch::async, [&] { w.run(job, [] { return true; }); });
  while (running.load() == 0) std::this_thread::yield();
  auto second = std::async(std::launch::async, [&] { w.run(job, [] { return true; }); });
  wait_for_waiters(w, 1);
  try {
    w.run(job, [] { return true; });
    FAIL() << "a third request found room";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 429);
  }
  release.set_value();
  first.get();
  second.get();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(most.load(), 1);
  EXPECT_EQ(w.waiting(), 0);
}

TEST(AsrWorker, AWaiterWhoseClientLeftGivesUp) {
  AsrWorker w(1, 4);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false};
  auto first = std::async(std::launch::async, [&] {
    w.run([&](ops::ThreadPool&) { started = true; released.wait(); }, [] { return true; });
  });
  while (!started) std::this_thread::yield();
  EXPECT_THROW(w.run([](ops::ThreadPool&) { FAIL() << "ran for a client that left"; }, [] { return false; }),
               ClientGone);
  EXPECT_EQ(w.waiting(), 0);
  release.set_value();
  first.get();
}

TEST(AsrWorker, AnExceptionFreesThePool) {
  AsrWorker w(1, 1);
  EXPECT_THROW(w.run([](ops::ThreadPool&) { throw std::runtime_error("boom"); }, [] { return true; }),
               std::runtime_error);
  bool ran = false;
  w.run([&](ops::ThreadPool&) { ran = true; }, [] { return true; });
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace edgellm::server
