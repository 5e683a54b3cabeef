#pragma once
// Routing policy profile (`--policy FILE`, JSON; format in docs/hybrid.md) and the per-request
// `route` overrides of a request body.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "hybrid/budget.h"
#include "hybrid/cloud_client.h"
#include "hybrid/pii.h"

namespace edgellm::hybrid {

enum class Mode { LocalOnly, CloudOnly, PreferLocal, PreferCloud };
const char* mode_name(Mode m);  // "local-only", ...
std::optional<Mode> mode_from_name(std::string_view name);

// What may leave the device when a kind is found: allow (as is), redact (placeholders go to the
// cloud), block (the whole request stays on the device).
enum class PrivacyAction { Allow, Redact, Block };
const char* action_name(PrivacyAction a);

struct ConfidenceConfig {
  double logprob_quantile = 0.1;        // which low quantile of token log-probs to test (p10)
  double min_quantile_logprob = -3.0;   // escalate when that quantile is below this (nats)
  double max_mean_entropy = 2.5;        // escalate when the mean entropy exceeds this (nats)
  // (Starting points from SmolLM2-135M greedy answers; fit yours with scripts/calibrate-routing.)
  int min_tokens = 1;                   // shorter local answers are not judged (except empty)
  // Streaming prefer-local requests: hold the local answer back until it is judged (so it can
  // still be replaced by the cloud's). false streams at once and never escalates streams.
  bool hold_stream = true;
};

struct LocalLimits {
  int32_t n_ctx = 0;                    // 0: take the server's context size
  std::optional<bool> supports_tools;   // unset: take what the server reports for its template
};

struct AuditConfig {
  std::string path;                     // empty: no audit log
  std::string fsync = "interval";       // always | interval | never
  int64_t fsync_interval_ms = 1000;
  std::string hash_salt;                // mixed into the prompt hash
};

struct Policy {
  std::string name = "default";
  Mode mode = Mode::PreferLocal;
  std::array<PrivacyAction, kPiiKindCount> actions{};  // per built-in kind; see default_policy()
  std::map<std::string, PrivacyAction> pattern_actions;  // by sanitized pattern label
  PrivacyAction keyword_action = PrivacyAction::Block;
  PiiConfig pii;
  ConfidenceConfig confidence;
  LocalLimits local;
  BudgetConfig budget;
  CloudConfig cloud;
  BreakerConfig breaker;
  AuditConfig audit;

  PrivacyAction action_for(const PiiSpan& span) const;
};

// Defaults: prefer-local; ID cards, bank cards, user patterns and keywords blocked; other kinds
// redacted; no budget limits; no cloud endpoint.
Policy default_policy();
// Parses a policy object; unknown keys and bad values throw InvalidArgument naming the key.
Policy parse_policy(const nlohmann::json& j);
Policy load_policy_file(const std::string& path);

// The optional "route" object of a request: {"mode": "prefer-cloud"}, {"escalate": true},
// {"local_only": true}. Absent: all defaults. Bad types throw InvalidArgument.
struct RouteOverride {
  std::optional<Mode> mode;
  bool escalate = false;
  bool local_only = false;
};
RouteOverride parse_route_override(const nlohmann::json& body);

}  // namespace edgellm::hybrid
