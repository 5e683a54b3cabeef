#include "hybrid/router.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace edgellm::hybrid {

const char* tier_name(Tier t) { return t == Tier::Cloud ? "cloud" : "device"; }

void add_pii_features(const Policy& policy, const std::vector<PiiSpan>& spans, RequestFeatures* f) {
  for (const auto& s : spans) {
    f->pii_counts[static_cast<size_t>(s.kind)]++;
    PrivacyAction a = policy.action_for(s);
    if (a == PrivacyAction::Block) f->pii_block = true;
    if (a == PrivacyAction::Redact) f->pii_redact = true;
  }
}

double quantile(std::vector<float> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  q = std::clamp(q, 0.0, 1.0);
  double pos = q * double(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  double frac = pos - double(lo);
  return double(v[lo]) + (double(v[hi]) - double(v[lo])) * frac;
}

int64_t Router::estimated_cloud_tokens(const RequestFeatures& f) {
  return std::max<int64_t>(f.prompt_tokens, 0) + std::max<int64_t>(f.max_tokens, 0);
}

Decision Router::decide(const RequestFeatures& f, const CloudState& cloud) const {
  Decision d;
  d.mode = f.route.mode.value_or(policy_.mode);
  if (f.route.local_only) d.mode = Mode::LocalOnly;
  int64_t n_ctx = policy_.local.n_ctx > 0 ? policy_.local.n_ctx : f.local_n_ctx;
  bool supports_tools = policy_.local.supports_tools.value_or(f.local_supports_tools);
  d.scores["prompt_tokens"] = f.prompt_tokens;
  if (n_ctx > 0) d.scores["context_fill"] = double(f.prompt_tokens) / double(n_ctx);
  if (cloud.budget.total_requests > 0)
    d.scores["cloud_request_share"] = double(cloud.budget.cloud_requests) / double(cloud.budget.total_requests);

  auto device = [&](const char* reason) {
    d.tier = Tier::Device;
    d.reason = reason;
    return d;
  };
  if (d.mode == Mode::LocalOnly) return device("local_only");
  if (f.pii_block) return device("privacy_block");

  // Why the cloud would be used, strongest first.
  std::string want;
  if (f.route.escalate) want = "explicit";
  else if (d.mode == Mode::CloudOnly) want = "cloud_only";
  else if (n_ctx > 0 && f.prompt_tokens >= n_ctx) want = "context_overflow";
  else if (n_ctx > 0 && f.max_tokens > 0 && f.prompt_tokens + f.max_tokens > n_ctx) want = "capability";
  else if (f.needs_tools && !supports_tools) want = "capability";
  else if (d.mode == Mode::PreferCloud) want = "prefer_cloud";

  if (want.empty()) {
    d.may_escalate = true;
    return device("prefer_local");
  }
  if (!cloud.available || !budget_allows(policy_.budget, cloud.budget, estimated_cloud_tokens(f))) {
    d.notes.push_back(want);
    d.fallback = true;
    return device(cloud.available ? "budget_exhausted" : "cloud_down");
  }
  d.tier = Tier::Cloud;
  d.reason = want;
  if (f.pii_redact) {
    d.redact = true;
    d.notes.push_back("redacted");
  }
  return d;
}

Escalation Router::should_escalate(const RequestFeatures& f, const LocalStats& stats, const CloudState& cloud) const {
  Escalation e;
  const auto& c = policy_.confidence;
  e.quantile_logprob = quantile(stats.logprobs, c.logprob_quantile);
  double sum = 0;
  for (float h : stats.entropies) sum += h;
  e.mean_entropy = stats.entropies.empty() ? std::numeric_limits<double>::quiet_NaN() : sum / double(stats.entropies.size());

  Mode mode = f.route.local_only ? Mode::LocalOnly : f.route.mode.value_or(policy_.mode);
  if (mode != Mode::PreferLocal || f.pii_block) return e;

  size_t n = std::max(stats.logprobs.size(), stats.entropies.size());
  bool low;
  if (n == 0) low = true;  // an empty answer is no answer
  else if (static_cast<int>(n) < c.min_tokens) low = false;
  else low = (!stats.logprobs.empty() && e.quantile_logprob < c.min_quantile_logprob) ||
             (!stats.entropies.empty() && e.mean_entropy > c.max_mean_entropy);
  if (!low) return e;
  if (!cloud.available) {
    e.reason = "cloud_down";
    return e;
  }
  if (!budget_allows(policy_.budget, cloud.budget, estimated_cloud_tokens(f))) {
    e.reason = "budget_exhausted";
    return e;
  }
  e.escalate = true;
  e.reason = "low_confidence";
  return e;
}

nlohmann::json RouteRecord::to_json() const {
  nlohmann::json j;
  j["tier"] = tier_name(tier);
  j["reason"] = reason;
  j["notes"] = notes;
  j["mode"] = mode;
  j["redacted"] = redacted;
  j["escalated"] = escalated;
  j["fallback"] = fallback;
  if (!cloud_error.empty()) {
    j["cloud_error"] = cloud_error;
    if (cloud_status) j["cloud_status"] = cloud_status;
  }
  if (cloud_attempts) j["cloud_attempts"] = cloud_attempts;
  nlohmann::json lat = nlohmann::json::object();
  if (device_ms >= 0) lat["device_ms"] = device_ms;
  if (cloud_ms >= 0) lat["cloud_ms"] = cloud_ms;
  j["latency"] = lat;
  nlohmann::json sc = nlohmann::json::object();
  for (auto it = scores.begin(); it != scores.end(); ++it) {
    // JSON has no NaN: unknown scores become null.
    if (it->is_number_float() && !std::isfinite(it->get<double>())) sc[it.key()] = nullptr;
    else sc[it.key()] = *it;
  }
  j["scores"] = sc;
  return j;
}

}  // namespace edgellm::hybrid
