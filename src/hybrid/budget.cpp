#include "hybrid/budget.h"

#include <algorithm>
#include <chrono>

namespace edgellm::hybrid {

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool budget_allows(const BudgetConfig& cfg, const BudgetSnapshot& s, int64_t tokens) {
  tokens = std::max<int64_t>(tokens, 0);
  if (cfg.max_cloud_requests >= 0 && s.cloud_requests + 1 > cfg.max_cloud_requests) return false;
  if (cfg.max_cloud_tokens >= 0 && s.cloud_tokens + tokens > cfg.max_cloud_tokens) return false;
  if (s.cloud_requests < cfg.grace_requests) return true;
  // Shares count the candidate request itself: after sending it, cloud/total must stay in bounds.
  if (cfg.max_request_share < 1.0 &&
      double(s.cloud_requests + 1) > cfg.max_request_share * double(s.total_requests + 1))
    return false;
  if (cfg.max_token_share < 1.0 &&
      double(s.cloud_tokens + tokens) > cfg.max_token_share * double(s.total_tokens + tokens))
    return false;
  return true;
}

BudgetWindow::BudgetWindow(BudgetConfig cfg, NowMs now) : cfg_(cfg), now_(std::move(now)) {}

void BudgetWindow::evict(int64_t now) const {
  while (!events_.empty() && events_.front().t <= now - cfg_.window_ms) {
    const Event& e = events_.front();
    sums_.total_requests -= 1;
    sums_.cloud_requests -= e.cloud ? 1 : 0;
    sums_.total_tokens -= e.device_tokens + e.cloud_tokens;
    sums_.cloud_tokens -= e.cloud_tokens;
    events_.pop_front();
  }
}

void BudgetWindow::record(bool cloud, int64_t device_tokens, int64_t cloud_tokens) {
  device_tokens = std::max<int64_t>(device_tokens, 0);
  cloud_tokens = std::max<int64_t>(cloud_tokens, 0);
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = now_();
  evict(now);
  events_.push_back({now, cloud, device_tokens, cloud_tokens});
  sums_.total_requests += 1;
  sums_.cloud_requests += cloud ? 1 : 0;
  sums_.total_tokens += device_tokens + cloud_tokens;
  sums_.cloud_tokens += cloud_tokens;
}

BudgetSnapshot BudgetWindow::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  evict(now_());
  return sums_;
}

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::Closed: return "closed";
    case BreakerState::Open: return "open";
    case BreakerState::HalfOpen: return "half-open";
  }
  return "?";
}

CircuitBreaker::CircuitBreaker(BreakerConfig cfg, NowMs now) : cfg_(cfg), now_(std::move(now)) {
  cfg_.failure_threshold = std::max(1, cfg_.failure_threshold);
  cfg_.probe_backoff = std::max(1.0, cfg_.probe_backoff);
  cfg_.max_cooldown_ms = std::max(cfg_.max_cooldown_ms, cfg_.cooldown_ms);
  cooldown_ = cfg_.cooldown_ms;
}

BreakerState CircuitBreaker::state_locked(int64_t now) const {
  if (state_ == BreakerState::Open && now - opened_at_ >= cooldown_) return BreakerState::HalfOpen;
  return state_;
}

bool CircuitBreaker::allow() {
  std::lock_guard<std::mutex> lock(mu_);
  BreakerState s = state_locked(now_());
  if (s == BreakerState::Closed) return true;
  if (s == BreakerState::Open) return false;
  state_ = BreakerState::HalfOpen;
  if (probe_in_flight_) return false;
  probe_in_flight_ = true;
  return true;
}

bool CircuitBreaker::available() const {
  std::lock_guard<std::mutex> lock(mu_);
  BreakerState s = state_locked(now_());
  return s == BreakerState::Closed || (s == BreakerState::HalfOpen && !probe_in_flight_);
}

void CircuitBreaker::record_success() {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = BreakerState::Closed;
  failures_ = 0;
  cooldown_ = cfg_.cooldown_ms;
  probe_in_flight_ = false;
}

void CircuitBreaker::record_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = now_();
  BreakerState s = state_locked(now);
  ++failures_;
  if (s == BreakerState::HalfOpen || failures_ >= cfg_.failure_threshold) {
    if (s == BreakerState::HalfOpen)  // a failed probe: wait longer before the next one
      cooldown_ = std::min(cfg_.max_cooldown_ms,
                           static_cast<int64_t>(static_cast<double>(cooldown_) * cfg_.probe_backoff));
    state_ = BreakerState::Open;
    opened_at_ = now;
  }
  probe_in_flight_ = false;
}

void CircuitBreaker::release() {
  std::lock_guard<std::mutex> lock(mu_);
  probe_in_flight_ = false;
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_locked(now_());
}

int64_t CircuitBreaker::cooldown_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cooldown_;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace edgellm::hybrid
