#pragma once
// Cloud budget over a sliding time window and a circuit breaker for the cloud endpoint. Both
// take an injectable millisecond clock so tests can move time without sleeping.
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace edgellm::hybrid {

using NowMs = std::function<int64_t()>;
// Monotonic milliseconds (steady_clock).
int64_t steady_now_ms();

struct BudgetConfig {
  int64_t window_ms = 3600 * 1000;
  double max_request_share = 1.0;   // of requests in the window that may go to the cloud
  double max_token_share = 1.0;     // of tokens (prompt + completion) in the window
  int64_t max_cloud_requests = -1;  // absolute caps per window; < 0: none
  int64_t max_cloud_tokens = -1;
  // Cloud requests always allowed in a window before the shares apply (otherwise the first
  // request of a window would always be over any share < 100%).
  int64_t grace_requests = 1;
};

struct BudgetSnapshot {
  int64_t total_requests = 0;
  int64_t cloud_requests = 0;
  int64_t total_tokens = 0;
  int64_t cloud_tokens = 0;
};

// Pure check: may one more cloud request estimated at `tokens` tokens go out?
bool budget_allows(const BudgetConfig& cfg, const BudgetSnapshot& snap, int64_t tokens);

// Thread-safe sliding-window counters.
class BudgetWindow {
 public:
  explicit BudgetWindow(BudgetConfig cfg, NowMs now = steady_now_ms);
  // One finished request: tokens processed on the device and in the cloud; `cloud` if any part
  // of it was sent to the cloud.
  void record(bool cloud, int64_t device_tokens, int64_t cloud_tokens);
  BudgetSnapshot snapshot() const;
  bool allows(int64_t tokens) const { return budget_allows(cfg_, snapshot(), tokens); }
  const BudgetConfig& config() const { return cfg_; }

 private:
  struct Event {
    int64_t t;
    bool cloud;
    int64_t device_tokens;
    int64_t cloud_tokens;
  };
  void evict(int64_t now) const;

  BudgetConfig cfg_;
  NowMs now_;
  mutable std::mutex mu_;
  mutable std::deque<Event> events_;
  mutable BudgetSnapshot sums_;
};

struct BreakerConfig {
  int failure_threshold = 3;     // consecutive failures that open the circuit
  int64_t cooldown_ms = 30000;   // open for this long, then one probe request is let through
  // Each failed probe multiplies the cool-down by this (up to max_cooldown_ms), so an endpoint
  // that stays down is probed ever more rarely; a success restores cooldown_ms.
  double probe_backoff = 2.0;
  int64_t max_cooldown_ms = 300000;
};

enum class BreakerState { Closed, Open, HalfOpen };
const char* breaker_state_name(BreakerState s);

// Closed: requests flow, consecutive failures are counted. Open: requests are refused until the
// cool-down has passed. Half-open: one probe at a time; success closes, failure re-opens with a
// longer cool-down (BreakerConfig::probe_backoff).
class CircuitBreaker {
 public:
  explicit CircuitBreaker(BreakerConfig cfg = {}, NowMs now = steady_now_ms);
  // Claims permission for one request (a half-open probe is reserved by this call).
  bool allow();
  // Would allow() succeed now? Does not change state (for routing decisions).
  bool available() const;
  void record_success();
  void record_failure();
  // The request allowed by allow() ended without telling us about the endpoint's health.
  void release();
  BreakerState state() const;
  int consecutive_failures() const;
  int64_t cooldown_ms() const;  // the current cool-down (grows with failed probes)

 private:
  BreakerState state_locked(int64_t now) const;

  BreakerConfig cfg_;
  NowMs now_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::Closed;
  int failures_ = 0;
  int64_t opened_at_ = 0;
  int64_t cooldown_ = 0;
  bool probe_in_flight_ = false;
};

}  // namespace edgellm::hybrid
