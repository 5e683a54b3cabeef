// Sliding-window budget and circuit breaker with an injected clock (no sleeping).
#include "hybrid/budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using namespace edgellm::hybrid;

namespace {
struct FakeClock {
  int64_t t = 1000000;
  NowMs fn() { return [this] { return t; }; }
};
}  // namespace

TEST(Budget, RequestShareWithGrace) {
  FakeClock clk;
  BudgetConfig cfg;
  cfg.window_ms = 10000;
  cfg.max_request_share = 0.2;
  cfg.grace_requests = 1;
  BudgetWindow w(cfg, clk.fn());
  EXPECT_TRUE(w.allows(0));  // grace: first cloud request of a window
  w.record(true, 0, 100);
  // 1 cloud of 1: a second cloud request would be 2/2.
  EXPECT_FALSE(w.allows(0));
  for (int i = 0; i < 8; ++i) w.record(false, 50, 0);
  // 1 cloud of 9; the next would make 2/10 = 20%: allowed, 3/11 would not.
  EXPECT_TRUE(w.allows(0));
  w.record(true, 0, 10);
  EXPECT_FALSE(w.allows(0));
  auto s = w.snapshot();
  EXPECT_EQ(s.total_requests, 10);
  EXPECT_EQ(s.cloud_requests, 2);
  EXPECT_EQ(s.cloud_tokens, 110);
  EXPECT_EQ(s.total_tokens, 510);
}

TEST(Budget, WindowSlidesOldEventsOut) {
  FakeClock clk;
  BudgetConfig cfg;
  cfg.window_ms = 1000;
  cfg.max_cloud_requests = 2;
  BudgetWindow w(cfg, clk.fn());
  w.record(true, 0, 1);
  clk.t += 500;
  w.record(true, 0, 1);
  EXPECT_FALSE(w.allows(0));
  clk.t += 500;  // the first event is exactly one window old: out
  EXPECT_TRUE(w.allows(0));
  EXPECT_EQ(w.snapshot().cloud_requests, 1);
  clk.t += 10000;
  EXPECT_EQ(w.snapshot().total_requests, 0);
  EXPECT_EQ(w.snapshot().total_tokens, 0);
}

TEST(Budget, TokenShareAndAbsoluteTokenCap) {
  BudgetConfig cfg;
  cfg.max_token_share = 0.5;
  cfg.grace_requests = 0;
  BudgetSnapshot s{10, 2, 1000, 400};
  EXPECT_TRUE(budget_allows(cfg, s, 200));   // 600 / 1200
  EXPECT_FALSE(budget_allows(cfg, s, 300));  // 700 / 1300
  cfg.max_token_share = 1.0;
  cfg.max_cloud_tokens = 500;
  EXPECT_TRUE(budget_allows(cfg, s, 100));
  EXPECT_FALSE(budget_allows(cfg, s, 101));
  cfg.max_cloud_tokens = -1;
  cfg.max_request_share = 0.0;  // no cloud at all once grace is used
  EXPECT_FALSE(budget_allows(cfg, s, 0));
}

TEST(Budget, ConcurrentRecordsAreCounted) {
  BudgetWindow w(BudgetConfig{});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) w.record(i % 4 == t, 1, 2);
    });
  for (auto& t : ts) t.join();
  auto s = w.snapshot();
  EXPECT_EQ(s.total_requests, 4000);
  EXPECT_EQ(s.cloud_requests, 1000);
  EXPECT_EQ(s.total_tokens, 12000);
}

TEST(Breaker, OpensAfterThresholdAndProbesAfterCooldown) {
  FakeClock clk;
  CircuitBreaker b({3, 5000, /*probe_backoff=*/1.0}, clk.fn());
  EXPECT_EQ(b.state(), BreakerState::Closed);
  b.record_failure();
  b.record_failure();
  b.record_success();  // success resets the consecutive count
  b.record_failure();
  b.record_failure();
  EXPECT_EQ(b.state(), BreakerState::Closed);
  EXPECT_TRUE(b.allow());
  b.record_failure();
  EXPECT_EQ(b.state(), BreakerState::Open);
  EXPECT_FALSE(b.available());
  EXPECT_FALSE(b.allow());
  clk.t += 4999;
  EXPECT_FALSE(b.allow());
  clk.t += 1;
  EXPECT_EQ(b.state(), BreakerState::HalfOpen);
  EXPECT_TRUE(b.available());
  EXPECT_TRUE(b.allow());       // the single probe
  EXPECT_FALSE(b.allow());      // a second caller waits for the probe's outcome
  EXPECT_FALSE(b.available());
  b.record_failure();           // probe failed: open again for a full cool-down
  EXPECT_EQ(b.state(), BreakerState::Open);
  clk.t += 5000;
  EXPECT_TRUE(b.allow());
  b.record_success();
  EXPECT_EQ(b.state(), BreakerState::Closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_TRUE(b.allow());
  EXPECT_TRUE(b.allow());
}

TEST(Breaker, FailedProbesBackOff) {
  FakeClock clk;
  CircuitBreaker b({1, 1000, /*probe_backoff=*/3.0, /*max_cooldown_ms=*/5000}, clk.fn());
  b.record_failure();  // opens for 1000
  EXPECT_EQ(b.cooldown_ms(), 1000);
  clk.t += 1000;
  ASSERT_TRUE(b.allow());
  b.record_failure();  // the probe failed: 3000 now
  EXPECT_EQ(b.cooldown_ms(), 3000);
  clk.t += 2999;
  EXPECT_FALSE(b.allow());
  EXPECT_FALSE(b.available());
  clk.t += 1;
  ASSERT_TRUE(b.allow());
  b.record_failure();  // 9000, capped at 5000
  EXPECT_EQ(b.cooldown_ms(), 5000);
  clk.t += 4999;
  EXPECT_FALSE(b.allow());
  clk.t += 1;
  ASSERT_TRUE(b.allow());
  b.record_success();  // closed, and the next opening waits the configured cool-down again
  EXPECT_EQ(b.cooldown_ms(), 1000);
  b.record_failure();
  EXPECT_EQ(b.state(), BreakerState::Open);
  clk.t += 1000;
  EXPECT_EQ(b.state(), BreakerState::HalfOpen);
}

TEST(Breaker, ClosedFailuresDoNotGrowTheCooldown) {
  FakeClock clk;
  CircuitBreaker b({2, 1000}, clk.fn());
  for (int i = 0; i < 5; ++i) {  // failures while closed (below the threshold, then opening) are no probes
    b.record_failure();
    b.record_success();
  }
  b.record_failure();
  b.record_failure();
  EXPECT_EQ(b.state(), BreakerState::Open);
  EXPECT_EQ(b.cooldown_ms(), 1000);
}

TEST(Breaker, ReleaseFreesProbeWithoutVerdict) {
  FakeClock clk;
  CircuitBreaker b({1, 100}, clk.fn());
  b.record_failure();
  clk.t += 100;
  EXPECT_TRUE(b.allow());
  b.release();
  EXPECT_EQ(b.state(), BreakerState::HalfOpen);
  EXPECT_TRUE(b.allow());
}
