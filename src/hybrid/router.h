#pragma once
// Routing decisions as pure functions of (policy, request features, local answer statistics,
// budget state, cloud health), and the RouteRecord that reports what happened.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hybrid/policy.h"

namespace edgellm::hybrid {

enum class Tier { Device, Cloud };
const char* tier_name(Tier t);  // "device" | "cloud"

struct RequestFeatures {
  std::array<int, kPiiKindCount> pii_counts{};
  bool pii_block = false;        // some finding's action is block
  bool pii_redact = false;       // some finding's action is redact
  int64_t prompt_tokens = 0;     // on the local tokenizer (or an estimate)
  int64_t max_tokens = -1;       // requested completion limit; < 0: not given
  int32_t local_n_ctx = 0;       // 0: unknown (no context checks)
  bool needs_tools = false;      // request carries tools the model should call
  bool local_supports_tools = true;
  RouteOverride route;
};

// Findings of `spans` summarised under `policy` (counts per kind, block/redact flags).
void add_pii_features(const Policy& policy, const std::vector<PiiSpan>& spans, RequestFeatures* f);

struct CloudState {
  bool available = true;  // endpoint configured and circuit breaker not open
  BudgetSnapshot budget;
};

struct Decision {
  Tier tier = Tier::Device;
  std::string reason;               // see RouteRecord::reason
  std::vector<std::string> notes;   // secondary reasons, e.g. {"redacted"} or the wanted-cloud reason
  bool redact = false;              // send placeholders instead of redact-action values
  bool may_escalate = false;        // a device answer will be judged by should_escalate
  bool fallback = false;            // the device answers only because the cloud cannot
  Mode mode = Mode::PreferLocal;    // effective mode after overrides
  nlohmann::json scores = nlohmann::json::object();
};

struct LocalStats {
  std::vector<float> logprobs;   // natural-log probability of each generated token
  std::vector<float> entropies;  // entropy (nats) of each step's distribution
  std::string finish_reason;
};

struct Escalation {
  bool escalate = false;
  std::string reason;          // low_confidence when escalating; budget_exhausted/cloud_down when
                               // low confidence could not be acted on; empty otherwise
  double quantile_logprob = 0;  // the policy's quantile of logprobs (NaN when no tokens)
  double mean_entropy = 0;
};

// numpy.quantile's default (linear interpolation between closest ranks); NaN for empty input.
double quantile(std::vector<float> values, double q);

class Router {
 public:
  explicit Router(const Policy& policy) : policy_(policy) {}
  // Before generation.
  Decision decide(const RequestFeatures& f, const CloudState& cloud) const;
  // After a device answer (only meaningful when decide() said may_escalate).
  Escalation should_escalate(const RequestFeatures& f, const LocalStats& stats, const CloudState& cloud) const;
  // Tokens a cloud call for these features is expected to cost (budget estimate).
  static int64_t estimated_cloud_tokens(const RequestFeatures& f);

 private:
  const Policy& policy_;
};

// What happened to one request. reason is one of: privacy_block, redacted, low_confidence,
// explicit, budget_exhausted, cloud_down, timeout, cloud_error, local_only, cloud_only,
// prefer_local, prefer_cloud, context_overflow, capability, fallback.
struct RouteRecord {
  Tier tier = Tier::Device;             // who produced the answer the client got
  std::string reason;
  std::vector<std::string> notes;
  std::string mode;
  bool redacted = false;                // placeholders were sent to the cloud
  bool escalated = false;               // a device answer was replaced by the cloud's
  bool fallback = false;                // the device answered because the cloud could not
  std::string cloud_error;              // cloud_error_name() of a failed cloud call
  int cloud_status = 0;
  int cloud_attempts = 0;
  double device_ms = -1;                // each tier's wall time; -1: tier not used
  double cloud_ms = -1;
  nlohmann::json scores = nlohmann::json::object();
  nlohmann::json to_json() const;
};

}  // namespace edgellm::hybrid
