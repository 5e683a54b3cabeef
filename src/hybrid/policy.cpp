// Policy JSON parsing. Strict: unknown keys are errors, so a typo cannot silently weaken privacy.
#include "hybrid/policy.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "util/error.h"

namespace edgellm::hybrid {

using nlohmann::json;

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::LocalOnly: return "local-only";
    case Mode::CloudOnly: return "cloud-only";
    case Mode::PreferLocal: return "prefer-local";
    case Mode::PreferCloud: return "prefer-cloud";
  }
  return "?";
}

std::optional<Mode> mode_from_name(std::string_view n) {
  for (Mode m : {Mode::LocalOnly, Mode::CloudOnly, Mode::PreferLocal, Mode::PreferCloud}) {
    std::string a = mode_name(m), b(n);
    for (auto& c : b) if (c == '_') c = '-';
    if (a == b) return m;
  }
  return std::nullopt;
}

const char* action_name(PrivacyAction a) {
  switch (a) {
    case PrivacyAction::Allow: return "allow";
    case PrivacyAction::Redact: return "redact";
    case PrivacyAction::Block: return "block";
  }
  return "?";
}

PrivacyAction Policy::action_for(const PiiSpan& span) const {
  if (span.kind == PiiKind::Pattern) {
    auto it = pattern_actions.find(span.label);
    return it == pattern_actions.end() ? PrivacyAction::Block : it->second;
  }
  if (span.kind == PiiKind::Keyword) return keyword_action;
  return actions[static_cast<size_t>(span.kind)];
}

Policy default_policy() {
  Policy p;
  p.actions.fill(PrivacyAction::Redact);
  p.actions[static_cast<size_t>(PiiKind::IdCard)] = PrivacyAction::Block;
  p.actions[static_cast<size_t>(PiiKind::BankCard)] = PrivacyAction::Block;
  p.actions[static_cast<size_t>(PiiKind::Pattern)] = PrivacyAction::Block;
  p.actions[static_cast<size_t>(PiiKind::Keyword)] = PrivacyAction::Block;
  return p;
}

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw InvalidArgument("policy: '" + key + "' " + why);
}

void check_keys(const json& obj, const std::string& where, std::initializer_list<const char*> allowed) {
  if (!obj.is_object()) bad(where, "must be an object");
  std::set<std::string> ok(allowed.begin(), allowed.end());
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!ok.count(it.key())) {
      std::string list;
      for (auto* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      bad(where.empty() ? it.key() : where + "." + it.key(), "is not a known key (expected one of: " + list + ")");
    }
}

template <typename T>
void get(const json& obj, const char* key, const std::string& where, T* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return;
  std::string name = where.empty() ? key : where + "." + key;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) bad(name, "must be true or false");
    } else if constexpr (std::is_arithmetic_v<T>) {
      if (!it->is_number()) bad(name, "must be a number");
    } else {
      if (!it->is_string()) bad(name, "must be a string");
    }
    *out = it->get<T>();
  } catch (const json::exception&) {
    bad(name, "has the wrong type");
  }
}

PrivacyAction parse_action(const json& v, const std::string& key) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s == "allow") return PrivacyAction::Allow;
    if (s == "redact") return PrivacyAction::Redact;
    if (s == "block") return PrivacyAction::Block;
  }
  bad(key, "must be \"allow\", \"redact\" or \"block\"");
}

void parse_privacy(const json& j, Policy& p) {
  check_keys(j, "privacy", {"default_action", "kinds", "western_plates", "patterns", "keywords", "keyword_action"});
  if (j.contains("default_action")) {
    PrivacyAction a = parse_action(j["default_action"], "privacy.default_action");
    for (size_t k = 0; k < kPiiKindCount; ++k)
      if (k != size_t(PiiKind::Pattern) && k != size_t(PiiKind::Keyword)) p.actions[k] = a;
  }
  if (j.contains("kinds")) {
    const json& kinds = j["kinds"];
    if (!kinds.is_object()) bad("privacy.kinds", "must be an object of KIND: action");
    for (auto it = kinds.begin(); it != kinds.end(); ++it) {
      PiiKind kind;
      if (!pii_kind_from_name(it.key(), &kind))
        bad("privacy.kinds." + it.key(), "is not a PII kind (EMAIL, PHONE, ID_CARD, BANK_CARD, IPV4, IPV6, PLATE)");
      std::string key = "privacy.kinds." + it.key();
      if (it->is_boolean() && !it->get<bool>()) {  // false: do not detect this kind at all
        p.pii.enabled[size_t(kind)] = false;
        continue;
      }
      p.actions[size_t(kind)] = parse_action(*it, key);
    }
  }
  get(j, "western_plates", "privacy", &p.pii.western_plates);
  if (j.contains("patterns")) {
    if (!j["patterns"].is_array()) bad("privacy.patterns", "must be an array");
    size_t i = 0;
    for (const auto& pat : j["patterns"]) {
      std::string where = "privacy.patterns[" + std::to_string(i++) + "]";
      check_keys(pat, where, {"name", "regex", "action"});
      UserPattern up;
      get(pat, "name", where, &up.name);
      get(pat, "regex", where, &up.regex);
      if (up.name.empty() || up.regex.empty()) bad(where, "needs a non-empty \"name\" and \"regex\"");
      PrivacyAction a = pat.contains("action") ? parse_action(pat["action"], where + ".action") : PrivacyAction::Block;
      p.pattern_actions[pii_label(up.name)] = a;
      p.pii.patterns.push_back(std::move(up));
    }
  }
  if (j.contains("keywords")) {
    if (!j["keywords"].is_array()) bad("privacy.keywords", "must be an array of strings");
    for (const auto& k : j["keywords"]) {
      if (!k.is_string()) bad("privacy.keywords", "must be an array of strings");
      if (!k.get<std::string>().empty()) p.pii.keywords.push_back(k.get<std::string>());
    }
  }
  if (j.contains("keyword_action")) p.keyword_action = parse_action(j["keyword_action"], "privacy.keyword_action");
}

void parse_budget(const json& j, BudgetConfig& b) {
  check_keys(j, "budget", {"window_seconds", "max_request_share", "max_token_share", "max_requests", "max_tokens", "grace_requests"});
  double window_s = double(b.window_ms) / 1000.0;
  get(j, "window_seconds", "budget", &window_s);
  if (!(window_s > 0)) bad("budget.window_seconds", "must be > 0");
  b.window_ms = int64_t(window_s * 1000.0);
  get(j, "max_request_share", "budget", &b.max_request_share);
  get(j, "max_token_share", "budget", &b.max_token_share);
  for (double s : {b.max_request_share, b.max_token_share})
    if (!(s >= 0.0 && s <= 1.0)) bad("budget", "shares must be between 0 and 1");
  get(j, "max_requests", "budget", &b.max_cloud_requests);
  get(j, "max_tokens", "budget", &b.max_cloud_tokens);
  get(j, "grace_requests", "budget", &b.grace_requests);
}

void parse_cloud(const json& j, Policy& p) {
  check_keys(j, "cloud", {"base_url", "model", "api_key_env", "connect_timeout_ms", "timeout_ms", "max_retries",
                          "backoff_ms", "max_backoff_ms", "failure_threshold", "cooldown_ms",
                          "probe_backoff", "max_cooldown_ms"});
  CloudConfig& c = p.cloud;
  get(j, "base_url", "cloud", &c.base_url);
  get(j, "model", "cloud", &c.model);
  get(j, "api_key_env", "cloud", &c.api_key_env);
  get(j, "connect_timeout_ms", "cloud", &c.connect_timeout_ms);
  get(j, "timeout_ms", "cloud", &c.timeout_ms);
  get(j, "max_retries", "cloud", &c.max_retries);
  get(j, "backoff_ms", "cloud", &c.backoff_ms);
  get(j, "max_backoff_ms", "cloud", &c.max_backoff_ms);
  get(j, "failure_threshold", "cloud", &p.breaker.failure_threshold);
  get(j, "cooldown_ms", "cloud", &p.breaker.cooldown_ms);
  get(j, "probe_backoff", "cloud", &p.breaker.probe_backoff);
  get(j, "max_cooldown_ms", "cloud", &p.breaker.max_cooldown_ms);
  if (p.breaker.probe_backoff < 1.0 || p.breaker.probe_backoff > 100.0)
    bad("cloud.probe_backoff", "must be between 1 and 100");
  if (p.breaker.cooldown_ms < 0) bad("cloud.cooldown_ms", "must be >= 0");
  if (j.contains("max_cooldown_ms") && p.breaker.max_cooldown_ms < p.breaker.cooldown_ms)
    bad("cloud.max_cooldown_ms", "must be >= cooldown_ms");
  // A long cool-down without a cap of its own: probes back off from it (no cap below it).
  p.breaker.max_cooldown_ms = std::max(p.breaker.max_cooldown_ms, p.breaker.cooldown_ms);
  if (c.connect_timeout_ms <= 0 || c.timeout_ms <= 0) bad("cloud", "timeouts must be > 0 ms");
  if (c.max_retries < 0 || c.max_retries > 10) bad("cloud.max_retries", "must be between 0 and 10");
  if (!c.base_url.empty() && c.base_url.rfind("http://", 0) != 0 && c.base_url.rfind("https://", 0) != 0)
    bad("cloud.base_url", "must start with http:// or https://");
}

}  // namespace

Policy parse_policy(const json& j) {
  Policy p = default_policy();
  check_keys(j, "", {"name", "mode", "privacy", "confidence", "local", "budget", "cloud", "audit"});
  get(j, "name", "", &p.name);
  if (j.contains("mode")) {
    auto m = j["mode"].is_string() ? mode_from_name(j["mode"].get<std::string>()) : std::nullopt;
    if (!m) bad("mode", "must be local-only, cloud-only, prefer-local or prefer-cloud");
    p.mode = *m;
  }
  if (j.contains("privacy")) parse_privacy(j["privacy"], p);
  if (j.contains("confidence")) {
    const json& c = j["confidence"];
    check_keys(c, "confidence", {"logprob_quantile", "min_quantile_logprob", "max_mean_entropy", "min_tokens", "hold_stream"});
    get(c, "logprob_quantile", "confidence", &p.confidence.logprob_quantile);
    get(c, "min_quantile_logprob", "confidence", &p.confidence.min_quantile_logprob);
    get(c, "max_mean_entropy", "confidence", &p.confidence.max_mean_entropy);
    get(c, "min_tokens", "confidence", &p.confidence.min_tokens);
    get(c, "hold_stream", "confidence", &p.confidence.hold_stream);
    if (!(p.confidence.logprob_quantile >= 0 && p.confidence.logprob_quantile <= 1))
      bad("confidence.logprob_quantile", "must be between 0 and 1");
  }
  if (j.contains("local")) {
    const json& l = j["local"];
    check_keys(l, "local", {"n_ctx", "supports_tools"});
    get(l, "n_ctx", "local", &p.local.n_ctx);
    if (l.contains("supports_tools")) {
      bool b = false;
      get(l, "supports_tools", "local", &b);
      p.local.supports_tools = b;
    }
  }
  if (j.contains("budget")) parse_budget(j["budget"], p.budget);
  if (j.contains("cloud")) parse_cloud(j["cloud"], p);
  if (j.contains("audit")) {
    const json& a = j["audit"];
    check_keys(a, "audit", {"path", "fsync", "fsync_interval_ms", "hash_salt"});
    get(a, "path", "audit", &p.audit.path);
    get(a, "fsync", "audit", &p.audit.fsync);
    get(a, "fsync_interval_ms", "audit", &p.audit.fsync_interval_ms);
    get(a, "hash_salt", "audit", &p.audit.hash_salt);
    if (p.audit.fsync != "always" && p.audit.fsync != "interval" && p.audit.fsync != "never")
      bad("audit.fsync", "must be always, interval or never");
  }
  PiiDetector check(p.pii);  // validates user regexes now rather than on the first request
  (void)check;
  return p;
}

Policy load_policy_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("policy: cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw InvalidArgument("policy: '" + path + "' is not valid JSON: " + e.what());
  }
  try {
    return parse_policy(j);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(e.what()) + " (in " + path + ")");
  }
}

RouteOverride parse_route_override(const json& body) {
  RouteOverride r;
  if (!body.is_object() || !body.contains("route") || body["route"].is_null()) return r;
  const json& j = body["route"];
  if (!j.is_object()) throw InvalidArgument("'route' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "mode") {
      auto m = it->is_string() ? mode_from_name(it->get<std::string>()) : std::nullopt;
      if (!m) throw InvalidArgument("'route.mode' must be local-only, cloud-only, prefer-local or prefer-cloud");
      r.mode = m;
    } else if (k == "escalate" || k == "local_only") {
      if (!it->is_boolean()) throw InvalidArgument("'route." + k + "' must be true or false");
      (k == "escalate" ? r.escalate : r.local_only) = it->get<bool>();
    } else {
      throw InvalidArgument("'route." + k + "' is not a known key (mode, escalate, local_only)");
    }
  }
  if (r.escalate && r.local_only) throw InvalidArgument("'route': escalate and local_only cannot both be true");
  return r;
}

}  // namespace edgellm::hybrid
