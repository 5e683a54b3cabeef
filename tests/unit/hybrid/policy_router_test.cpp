// Policy parsing (strict keys, actions, overrides) and the Router's two pure decision points.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "hybrid/policy.h"
#include "hybrid/router.h"
#include "util/error.h"

using namespace edgellm::hybrid;
using nlohmann::json;

TEST(Policy, ParsesFullProfile) {
  json j = json::parse(R"({
    "name": "notes-app", "mode": "prefer-cloud",
    "privacy": {"default_action": "redact", "kinds": {"EMAIL": "allow", "plate": "block", "IPV6": false},
                "patterns": [{"name": "employee id", "regex": "EMP-[0-9]{6}", "action": "redact"}],
                "keywords": ["Project Falcon"], "keyword_action": "block", "western_plates": false},
    "confidence": {"logprob_quantile": 0.2, "min_quantile_logprob": -3, "max_mean_entropy": 2.5, "hold_stream": false},
    "local": {"n_ctx": 2048, "supports_tools": false},
    "budget": {"window_seconds": 60, "max_request_share": 0.2, "max_tokens": 5000},
    "cloud": {"base_url": "https://api.example.com/v1", "model": "big", "timeout_ms": 1234, "failure_threshold": 5,
              "probe_backoff": 3, "max_cooldown_ms": 60000},
    "audit": {"path": "/tmp/x.jsonl", "fsync": "always"}})");
  Policy p = parse_policy(j);
  EXPECT_EQ(p.name, "notes-app");
  EXPECT_EQ(p.mode, Mode::PreferCloud);
  EXPECT_EQ(p.actions[size_t(PiiKind::Email)], PrivacyAction::Allow);
  EXPECT_EQ(p.actions[size_t(PiiKind::Plate)], PrivacyAction::Block);
  EXPECT_EQ(p.actions[size_t(PiiKind::IdCard)], PrivacyAction::Redact);  // default_action
  EXPECT_FALSE(p.pii.enabled[size_t(PiiKind::IPv6)]);
  EXPECT_FALSE(p.pii.western_plates);
  EXPECT_EQ(p.pattern_actions.at("EMPLOYEE_ID"), PrivacyAction::Redact);
  EXPECT_EQ(p.pii.keywords.size(), 1u);
  EXPECT_DOUBLE_EQ(p.confidence.logprob_quantile, 0.2);
  EXPECT_FALSE(p.confidence.hold_stream);
  EXPECT_EQ(p.local.n_ctx, 2048);
  EXPECT_EQ(p.local.supports_tools, false);
  EXPECT_EQ(p.budget.window_ms, 60000);
  EXPECT_EQ(p.budget.max_cloud_tokens, 5000);
  EXPECT_EQ(p.cloud.model, "big");
  EXPECT_EQ(p.cloud.timeout_ms, 1234);
  EXPECT_EQ(p.breaker.failure_threshold, 5);
  EXPECT_DOUBLE_EQ(p.breaker.probe_backoff, 3.0);
  EXPECT_EQ(p.breaker.max_cooldown_ms, 60000);
  EXPECT_EQ(p.audit.fsync, "always");
}

TEST(Policy, DefaultsBlockIdsAndCards) {
  Policy p = default_policy();
  EXPECT_EQ(p.mode, Mode::PreferLocal);
  EXPECT_EQ(p.actions[size_t(PiiKind::IdCard)], PrivacyAction::Block);
  EXPECT_EQ(p.actions[size_t(PiiKind::BankCard)], PrivacyAction::Block);
  EXPECT_EQ(p.actions[size_t(PiiKind::Phone)], PrivacyAction::Redact);
  PiiSpan unknown_pattern{PiiKind::Pattern, 0, 1, "x", "NOT_CONFIGURED"};
  EXPECT_EQ(p.action_for(unknown_pattern), PrivacyAction::Block);
}

TEST(Policy, RejectsTyposAndBadValuesWithTheKeyName) {
  auto err = [](const char* text) {
    try {
      parse_policy(json::parse(text));
    } catch (const edgellm::InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err(R"({"mdoe": "local-only"})").find("'mdoe'"), std::string::npos);
  EXPECT_NE(err(R"({"mode": "sometimes"})").find("'mode'"), std::string::npos);
  EXPECT_NE(err(R"({"privacy": {"kinds": {"EMAIL": "hide"}}})").find("privacy.kinds.EMAIL"), std::string::npos);
  EXPECT_NE(err(R"({"privacy": {"kinds": {"SSN": "block"}}})").find("SSN"), std::string::npos);
  EXPECT_NE(err(R"({"budget": {"max_request_share": 1.5}})").find("budget"), std::string::npos);
  EXPECT_NE(err(R"({"cloud": {"timeout_ms": "fast"}})").find("cloud.timeout_ms"), std::string::npos);
  EXPECT_NE(err(R"({"cloud": {"base_url": "ftp://x"}})").find("cloud.base_url"), std::string::npos);
  EXPECT_NE(err(R"({"cloud": {"probe_backoff": 0.5}})").find("cloud.probe_backoff"), std::string::npos);
  EXPECT_NE(err(R"({"cloud": {"cooldown_ms": 5000, "max_cooldown_ms": 10}})").find("cloud.max_cooldown_ms"),
            std::string::npos);
  // A long cool-down alone raises the default cap instead of failing.
  EXPECT_EQ(parse_policy(json::parse(R"({"cloud": {"cooldown_ms": 600000}})")).breaker.max_cooldown_ms, 600000);
  EXPECT_NE(err(R"({"privacy": {"patterns": [{"name": "x", "regex": "(["}]}})").find("invalid regex"), std::string::npos);
  EXPECT_NE(err(R"({"audit": {"fsync": "sometimes"}})").find("audit.fsync"), std::string::npos);
  EXPECT_NE(err(R"([1, 2])").find("object"), std::string::npos);
}

TEST(Policy, LoadsFromFile) {
  std::string path = ::testing::TempDir() + "/hybrid_policy_test.json";
  {
    std::ofstream(path) << R"({"mode": "local-only"})";
  }
  EXPECT_EQ(load_policy_file(path).mode, Mode::LocalOnly);
  {
    std::ofstream(path) << "{not json";
  }
  EXPECT_THROW(load_policy_file(path), edgellm::InvalidArgument);
  EXPECT_THROW(load_policy_file(path + ".missing"), edgellm::InvalidArgument);
  std::remove(path.c_str());
}

TEST(Policy, RouteOverride) {
  EXPECT_FALSE(parse_route_override(json::object()).mode.has_value());
  auto r = parse_route_override(json{{"route", {{"mode", "prefer-cloud"}}}});
  EXPECT_EQ(r.mode, Mode::PreferCloud);
  EXPECT_TRUE(parse_route_override(json{{"route", {{"escalate", true}}}}).escalate);
  EXPECT_TRUE(parse_route_override(json{{"route", {{"local_only", true}}}}).local_only);
  EXPECT_THROW(parse_route_override(json{{"route", {{"escalate", "yes"}}}}), edgellm::InvalidArgument);
  EXPECT_THROW(parse_route_override(json{{"route", {{"colour", "red"}}}}), edgellm::InvalidArgument);
  EXPECT_THROW(parse_route_override(json{{"route", "cloud"}}), edgellm::InvalidArgument);
  EXPECT_THROW(parse_route_override(json{{"route", {{"escalate", true}, {"local_only", true}}}}),
               edgellm::InvalidArgument);
}

TEST(Router, QuantileMatchesNumpyLinear) {
  // numpy.quantile([-5, -1, -0.5, -0.2, -0.1], q) for q = 0.1, 0.5, 0.9, 0, 1
  std::vector<float> v = {-0.5f, -5.f, -0.1f, -1.f, -0.2f};
  EXPECT_NEAR(quantile(v, 0.1), -3.4, 1e-6);
  EXPECT_NEAR(quantile(v, 0.5), -0.5, 1e-6);
  EXPECT_NEAR(quantile(v, 0.9), -0.14, 1e-6);
  EXPECT_NEAR(quantile(v, 0.0), -5.0, 1e-6);
  EXPECT_NEAR(quantile(v, 1.0), -0.1, 1e-6);
  EXPECT_TRUE(std::isnan(quantile({}, 0.1)));
}

namespace {
struct RouterFixture : ::testing::Test {
  Policy policy = default_policy();
  RequestFeatures f;
  CloudState up;
  CloudState down;
  void SetUp() override {
    f.prompt_tokens = 100;
    f.local_n_ctx = 2048;
    down.available = false;
  }
};
}  // namespace

TEST_F(RouterFixture, DecisionOrder) {
  Router r(policy);
  Decision d = r.decide(f, up);
  EXPECT_EQ(d.tier, Tier::Device);
  EXPECT_EQ(d.reason, "prefer_local");
  EXPECT_TRUE(d.may_escalate);

  policy.mode = Mode::PreferCloud;
  EXPECT_EQ(r.decide(f, up).reason, "prefer_cloud");
  EXPECT_EQ(r.decide(f, up).tier, Tier::Cloud);
  d = r.decide(f, down);
  EXPECT_EQ(d.tier, Tier::Device);
  EXPECT_EQ(d.reason, "cloud_down");
  EXPECT_TRUE(d.fallback);

  // Privacy beats everything except local-only.
  f.pii_block = true;
  f.route.escalate = true;
  EXPECT_EQ(r.decide(f, up).reason, "privacy_block");
  f.route.local_only = true;
  EXPECT_EQ(r.decide(f, up).reason, "local_only");
  f = RequestFeatures{};
  f.prompt_tokens = 100;
  f.local_n_ctx = 2048;

  policy.mode = Mode::PreferLocal;
  f.route.escalate = true;
  EXPECT_EQ(r.decide(f, up).reason, "explicit");
  f.route.escalate = false;
  f.route.mode = Mode::CloudOnly;
  EXPECT_EQ(r.decide(f, up).reason, "cloud_only");
  f.route.mode.reset();
  f.prompt_tokens = 4000;
  EXPECT_EQ(r.decide(f, up).reason, "context_overflow");
  f.prompt_tokens = 1000;
  f.max_tokens = 1500;
  EXPECT_EQ(r.decide(f, up).reason, "capability");
  f.max_tokens = -1;
  f.needs_tools = true;
  f.local_supports_tools = false;
  EXPECT_EQ(r.decide(f, up).reason, "capability");
  policy.local.supports_tools = true;  // the policy knows better than the template probe
  EXPECT_EQ(r.decide(f, up).reason, "prefer_local");

  f.pii_redact = true;
  f.route.mode = Mode::PreferCloud;
  d = r.decide(f, up);
  EXPECT_EQ(d.tier, Tier::Cloud);
  EXPECT_TRUE(d.redact);
  EXPECT_EQ(d.notes, std::vector<std::string>{"redacted"});
}

TEST_F(RouterFixture, BudgetExhaustedKeepsRequestOnDevice) {
  policy.mode = Mode::PreferCloud;
  policy.budget.max_request_share = 0.2;
  Router r(policy);
  CloudState s;
  s.budget = {10, 2, 1000, 200};  // another cloud request would be 3/11 > 20%
  Decision d = r.decide(f, s);
  EXPECT_EQ(d.tier, Tier::Device);
  EXPECT_EQ(d.reason, "budget_exhausted");
  EXPECT_EQ(d.notes, std::vector<std::string>{"prefer_cloud"});
  s.budget = {20, 2, 1000, 200};
  EXPECT_EQ(r.decide(f, s).tier, Tier::Cloud);
}

TEST_F(RouterFixture, EscalationThresholds) {
  policy.confidence.min_quantile_logprob = -3.0;
  policy.confidence.max_mean_entropy = 2.0;
  Router r(policy);
  LocalStats sure{{-0.1f, -0.2f, -0.3f, -0.1f}, {0.5f, 0.4f, 0.3f, 0.2f}, "stop"};
  Escalation e = r.should_escalate(f, sure, up);
  EXPECT_FALSE(e.escalate);
  EXPECT_TRUE(e.reason.empty());
  LocalStats unsure_lp{{-0.1f, -6.f, -7.f, -0.1f, -0.2f}, {0.5f, 0.5f, 0.5f, 0.5f, 0.5f}, "stop"};
  e = r.should_escalate(f, unsure_lp, up);
  EXPECT_TRUE(e.escalate);
  EXPECT_EQ(e.reason, "low_confidence");
  EXPECT_LT(e.quantile_logprob, -3.0);
  LocalStats unsure_h{{-0.1f, -0.1f}, {2.5f, 2.0f}, "stop"};
  EXPECT_TRUE(r.should_escalate(f, unsure_h, up).escalate);
  EXPECT_NEAR(r.should_escalate(f, unsure_h, up).mean_entropy, 2.25, 1e-6);
  EXPECT_TRUE(r.should_escalate(f, LocalStats{}, up).escalate);  // empty answer
  // Low confidence that cannot be acted on says why.
  EXPECT_EQ(r.should_escalate(f, unsure_lp, down).reason, "cloud_down");
  EXPECT_FALSE(r.should_escalate(f, unsure_lp, down).escalate);
  CloudState broke;
  policy.budget.max_cloud_requests = 0;
  EXPECT_EQ(r.should_escalate(f, unsure_lp, broke).reason, "budget_exhausted");
  policy.budget.max_cloud_requests = -1;
  // Never escalate when the request must stay local or is not prefer-local.
  f.route.local_only = true;
  EXPECT_FALSE(r.should_escalate(f, unsure_lp, up).escalate);
  f.route.local_only = false;
  f.pii_block = true;
  EXPECT_FALSE(r.should_escalate(f, unsure_lp, up).escalate);
  f.pii_block = false;
  f.route.mode = Mode::PreferCloud;
  EXPECT_FALSE(r.should_escalate(f, unsure_lp, up).escalate);
}

TEST(RouteRecord, JsonHasFieldsAndNoNaN) {
  RouteRecord rec;
  rec.tier = Tier::Cloud;
  rec.reason = "low_confidence";
  rec.escalated = true;
  rec.device_ms = 12.5;
  rec.cloud_ms = 80;
  rec.cloud_attempts = 1;
  rec.scores["quantile_logprob"] = std::nan("");
  rec.scores["mean_entropy"] = 1.5;
  json j = rec.to_json();
  EXPECT_EQ(j["tier"], "cloud");
  EXPECT_EQ(j["reason"], "low_confidence");
  EXPECT_EQ(j["escalated"], true);
  EXPECT_EQ(j["latency"]["device_ms"], 12.5);
  EXPECT_TRUE(j["scores"]["quantile_logprob"].is_null());
  EXPECT_EQ(j["scores"]["mean_entropy"], 1.5);
  EXPECT_NO_THROW(json::parse(j.dump()));
}
