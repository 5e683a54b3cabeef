// Orchestrator end to end with a fake local generator and the in-process fake cloud: routing,
// redaction (what the cloud sees) and restore (what the client sees), streaming, escalation,
// fallback on every cloud failure, budget, and the audit trail.
#include "hybrid/orchestrator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <fstream>
#include <thread>

#include "fake_cloud.h"
#include "util/error.h"

using namespace edgellm::hybrid;
using edgellm::hybrid::testing::FakeCloud;
using edgellm::hybrid::testing::FakeMode;
using nlohmann::json;

namespace {

// Stands in for the device: fixed text, confident or unsure token statistics; records the
// prompt and parameters it was handed.
struct FakeLocal final : DeviceBackend {
  std::string text = "本地回答 local answer";
  bool confident = true;
  int calls = 0;
  std::vector<std::vector<int32_t>> prompts;
  int32_t last_max_tokens = 0;

  FakeLocal& fn() { return *this; }
  edgellm::runtime::GenerateResult generate(const std::vector<int32_t>& prompt, const edgellm::runtime::GenerateParams& params,
                                   const StreamFn* on_delta) override {
    ++calls;
    prompts.push_back(prompt);
    last_max_tokens = params.max_tokens;
    edgellm::runtime::GenerateResult r;
    r.text = text;
    r.finish_reason = "stop";
    for (int i = 0; i < 8; ++i) {
      r.token_logprobs.push_back(confident ? -0.05f : (i % 2 ? -7.0f : -0.5f));
      r.token_entropies.push_back(confident ? 0.3f : 3.5f);
    }
    r.tokens = {11, 12, 13, 14, 15, 16, 17, 18};
    r.n_prompt = 20;
    r.n_generated = 8;
    if (on_delta) {
      for (size_t i = 0; i < text.size(); i += 5)
        if (!(*on_delta)(text.substr(i, 5))) break;
    }
    return r;
  }
};

json chat(const std::string& user, json route = nullptr) {
  json b = {{"model", "edge"}, {"messages", {{{"role", "system"}, {"content", "You are helpful."}}, {{"role", "user"}, {"content", user}}}},
            {"max_tokens", 64}, {"top_k", 40}};
  if (!route.is_null()) b["route"] = route;
  return b;
}

Policy policy_for(const FakeCloud& f, Mode mode = Mode::PreferLocal) {
  Policy p = default_policy();
  p.mode = mode;
  p.cloud.base_url = f.base_url();
  p.cloud.model = "cloud-big";
  p.cloud.max_retries = 0;
  p.cloud.backoff_ms = 1;
  p.confidence.min_quantile_logprob = -3.0;
  p.confidence.max_mean_entropy = 2.0;
  return p;
}

std::string all_cloud_bodies(const FakeCloud& f) {
  std::string s;
  for (auto& b : f.bodies()) s += b.dump() + "\n";
  return s;
}

}  // namespace

TEST(Orchestrator, ConfidentLocalAnswerStaysOnDevice) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud), {2048, true});
  FakeLocal local;
  HybridRequest req{chat("hello"), "r1", "app", -1};
  req.prompt = {1, 2, 3};
  req.params.max_tokens = 33;
  HybridResponse r = o.handle(req, local.fn(), nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.result.text, local.text);
  EXPECT_EQ(r.route.tier, Tier::Device);
  EXPECT_EQ(r.route.reason, "prefer_local");
  EXPECT_EQ(cloud.requests(), 0);
  // The device got the request's prompt and parameters, and its result comes back as it was.
  ASSERT_EQ(local.prompts.size(), 1u);
  EXPECT_EQ(local.prompts[0], (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(local.last_max_tokens, 33);
  EXPECT_EQ(r.result.tokens.size(), 8u);
  EXPECT_EQ(r.result.n_generated, 8);
  EXPECT_GT(r.route.scores["quantile_logprob"].get<double>(), -1.0);
  EXPECT_GE(r.route.device_ms, 0);
  EXPECT_EQ(r.route.cloud_ms, -1);
}

TEST(Orchestrator, LowConfidenceEscalatesToCloud) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud), {2048, true});
  FakeLocal local;
  local.confident = false;
  HybridResponse r = o.handle({chat("explain monads"), "r2", "", -1}, local.fn(), nullptr);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.route.tier, Tier::Cloud);
  EXPECT_EQ(r.route.reason, "low_confidence");
  EXPECT_TRUE(r.route.escalated);
  EXPECT_EQ(r.result.text, "echo: explain monads");
  EXPECT_EQ(local.calls, 1);
  EXPECT_GE(r.route.device_ms, 0);
  EXPECT_GE(r.route.cloud_ms, 0);
  ASSERT_EQ(cloud.requests(), 1);
  json sent = cloud.bodies()[0];
  EXPECT_EQ(sent["model"], "cloud-big");
  EXPECT_FALSE(sent.contains("route"));
  EXPECT_FALSE(sent.contains("top_k"));  // local-only sampling extension stripped
  EXPECT_EQ(o.budget().snapshot().cloud_requests, 1);
}

TEST(Orchestrator, RedactsBeforeCloudAndRestoresAnswer) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  std::string user = "请联系 zhang.wei@example.com 或 13812345678，服务器 10.1.2.3，再发 zhang.wei@example.com";
  HybridResponse r = o.handle({chat(user), "r3", "", -1}, local.fn(), nullptr);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.route.tier, Tier::Cloud);
  EXPECT_TRUE(r.route.redacted);
  EXPECT_EQ(local.calls, 0);
  std::string sent = all_cloud_bodies(cloud);
  for (const char* v : {"zhang.wei@example.com", "13812345678", "10.1.2.3"}) EXPECT_EQ(sent.find(v), std::string::npos) << v;
  EXPECT_NE(sent.find("[EMAIL_1]"), std::string::npos);
  EXPECT_NE(sent.find("[PHONE_1]"), std::string::npos);
  EXPECT_EQ(sent.find("[EMAIL_2]"), std::string::npos);  // same value, same placeholder
  EXPECT_EQ(r.result.text, "echo: " + user);                    // the echo came back with placeholders
}

TEST(Orchestrator, StreamedCloudAnswerIsRestoredAcrossChunks) {
  FakeCloud cloud;
  cloud.set_reply("Sure, I'll email [EMAIL_1] and call [PHONE_1] today; [EMAIL_1] again.");
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  std::vector<std::string> deltas;
  StreamFn sink = [&](std::string_view d) {
    deltas.emplace_back(d);
    return true;
  };
  HybridResponse r = o.handle({chat("mail a.b@example.org or call +86 139 1234 5678"), "r4", "", -1}, local.fn(), &sink);
  ASSERT_TRUE(r.ok) << r.error;
  std::string joined;
  for (auto& d : deltas) {
    EXPECT_EQ(d.find("[EMAIL"), std::string::npos) << d;
    joined += d;
  }
  EXPECT_GT(deltas.size(), 3u);
  EXPECT_EQ(joined, "Sure, I'll email a.b@example.org and call +86 139 1234 5678 today; a.b@example.org again.");
  EXPECT_EQ(r.result.text, joined);
}

TEST(Orchestrator, BlockedPiiNeverLeavesEvenWhenAsked) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud, Mode::CloudOnly), {2048, true});
  FakeLocal local;
  HybridResponse r = o.handle({chat("我的身份证 11010519491231002X", {{"escalate", true}}), "r5", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(r.route.tier, Tier::Device);
  EXPECT_EQ(r.route.reason, "privacy_block");
  EXPECT_EQ(cloud.requests(), 0);
  // Unsure local answer: still no escalation for blocked data.
  local.confident = false;
  Orchestrator o2(policy_for(cloud), {2048, true});
  r = o2.handle({chat("卡号 4111 1111 1111 1111 怎么办"), "r6", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(r.route.reason, "privacy_block");
  EXPECT_EQ(cloud.requests(), 0);
  // User keyword (blocked by default).
  Policy p = policy_for(cloud, Mode::PreferCloud);
  p.pii.keywords = {"Project Falcon"};
  Orchestrator o3(p, {2048, true});
  EXPECT_EQ(o3.handle({chat("status of project falcon?"), "r7", "", -1}, local.fn(), nullptr).route.reason, "privacy_block");
  EXPECT_EQ(cloud.requests(), 0);
}

TEST(Orchestrator, RouteOverrides) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  HybridResponse lo = o.handle({chat("hi", {{"local_only", true}}), "a", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(lo.route.reason, "local_only");
  EXPECT_EQ(cloud.requests(), 0);
  // Scores are reported even when escalation is not allowed (calibration uses them).
  EXPECT_NEAR(lo.route.scores["quantile_logprob"].get<double>(), -0.05, 1e-6);
  EXPECT_NEAR(lo.route.scores["mean_entropy"].get<double>(), 0.3, 1e-6);
  HybridResponse r = o.handle({chat("hi", {{"mode", "prefer-local"}, {"escalate", true}}), "b", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(r.route.reason, "explicit");
  EXPECT_EQ(r.route.tier, Tier::Cloud);
  EXPECT_THROW(o.handle({chat("hi", {{"mode", "sideways"}}), "c", "", -1}, local.fn(), nullptr), edgellm::InvalidArgument);
}

TEST(Orchestrator, ContextOverflowAndCapabilityGoToCloud) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud), {512, false});
  FakeLocal local;
  EXPECT_EQ(o.handle({chat("long"), "a", "", 600}, local.fn(), nullptr).route.reason, "context_overflow");
  json b = chat("call a tool");
  b["tools"] = json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}});
  EXPECT_EQ(o.handle({b, "b", "", 10}, local.fn(), nullptr).route.reason, "capability");
  EXPECT_EQ(local.calls, 0);
}

TEST(Orchestrator, CloudFailuresFallBackToDevice) {
  struct Case {
    FakeMode mode;
    const char* reason;
    const char* error;
  };
  for (Case c : {Case{FakeMode::Status500, "cloud_error", "http_status"}, Case{FakeMode::Malformed, "cloud_error", "malformed_json"},
                 Case{FakeMode::Sleep, "timeout", "timeout"}, Case{FakeMode::Drop, "cloud_error", "dropped"}}) {
    FakeCloud cloud;
    cloud.set_mode(c.mode);
    cloud.set_sleep_ms(60000);  // held until the case ends: always past the timeout
    Policy p = policy_for(cloud, Mode::PreferCloud);
    p.cloud.timeout_ms = 150;
    Orchestrator o(p, {2048, true});
    FakeLocal local;
    HybridResponse r = o.handle({chat("q"), "f", "", -1}, local.fn(), nullptr);
    ASSERT_TRUE(r.ok) << c.error;
    EXPECT_EQ(r.result.text, local.text);
    EXPECT_EQ(r.route.tier, Tier::Device);
    EXPECT_TRUE(r.route.fallback);
    EXPECT_EQ(r.route.reason, c.reason) << c.error;
    EXPECT_EQ(r.route.cloud_error, c.error);
    EXPECT_EQ(r.route.notes, std::vector<std::string>{"prefer_cloud"});
  }
}

TEST(Orchestrator, BreakerOpenMeansCloudDownWithoutCalling) {
  FakeCloud cloud;
  cloud.set_mode(FakeMode::Status500);
  Policy p = policy_for(cloud, Mode::PreferCloud);
  p.breaker = {2, 60000};
  int64_t now = 0;
  Orchestrator o(p, {2048, true}, [&] { return now; });
  FakeLocal local;
  o.handle({chat("1"), "1", "", -1}, local.fn(), nullptr);
  o.handle({chat("2"), "2", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(cloud.requests(), 2);
  HybridResponse r = o.handle({chat("3"), "3", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(r.route.reason, "cloud_down");
  EXPECT_TRUE(r.route.fallback);
  EXPECT_EQ(cloud.requests(), 2);
  now += 60000;  // cool-down over: a probe goes out and succeeds
  cloud.set_mode(FakeMode::Normal);
  EXPECT_EQ(o.handle({chat("4"), "4", "", -1}, local.fn(), nullptr).route.tier, Tier::Cloud);
}

TEST(Orchestrator, EscalationThatFailsKeepsLocalAnswer) {
  FakeCloud cloud;
  cloud.set_mode(FakeMode::Status500);
  Orchestrator o(policy_for(cloud), {2048, true});
  FakeLocal local;
  local.confident = false;
  HybridResponse r = o.handle({chat("q"), "e", "", -1}, local.fn(), nullptr);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.result.text, local.text);
  EXPECT_EQ(r.route.tier, Tier::Device);
  EXPECT_EQ(r.route.reason, "cloud_error");
  EXPECT_TRUE(r.route.fallback);
  EXPECT_EQ(r.route.notes, std::vector<std::string>{"low_confidence"});
}

TEST(Orchestrator, BudgetCapsCloudShare) {
  FakeCloud cloud;
  Policy p = policy_for(cloud, Mode::PreferCloud);
  p.budget.max_request_share = 0.25;
  p.budget.grace_requests = 1;
  int64_t now = 0;
  Orchestrator o(p, {2048, true}, [&] { return now; });
  FakeLocal local;
  int cloud_answers = 0;
  for (int i = 0; i < 12; ++i) {
    HybridResponse r = o.handle({chat("q" + std::to_string(i)), "b", "", -1}, local.fn(), nullptr);
    if (r.route.tier == Tier::Cloud) ++cloud_answers;
    else EXPECT_EQ(r.route.reason, "budget_exhausted");
  }
  auto s = o.budget().snapshot();
  EXPECT_EQ(s.total_requests, 12);
  EXPECT_EQ(s.cloud_requests, cloud_answers);
  EXPECT_LE(double(cloud_answers) / 12.0, 0.25 + 1e-9);
  EXPECT_GE(cloud_answers, 2);
}

TEST(Orchestrator, StreamingPreferLocalHoldsThenChooses) {
  FakeCloud cloud;
  cloud.set_reply("cloud says hi");
  Orchestrator o(policy_for(cloud), {2048, true});
  FakeLocal local;
  std::string got;
  StreamFn sink = [&](std::string_view d) {
    got += d;
    return true;
  };
  // Confident: the client gets the local answer (released after judging).
  HybridResponse r = o.handle({chat("q"), "s1", "", -1}, local.fn(), &sink);
  EXPECT_EQ(got, local.text);
  EXPECT_EQ(r.route.tier, Tier::Device);
  // Unsure: the client sees only the cloud's answer, never the discarded local one.
  got.clear();
  local.confident = false;
  r = o.handle({chat("q"), "s2", "", -1}, local.fn(), &sink);
  EXPECT_EQ(got, "cloud says hi");
  EXPECT_TRUE(r.route.escalated);
  // hold_stream off: local text streams at once and is never replaced.
  Policy p = policy_for(cloud);
  p.confidence.hold_stream = false;
  Orchestrator o2(p, {2048, true});
  got.clear();
  r = o2.handle({chat("q"), "s3", "", -1}, local.fn(), &sink);
  EXPECT_EQ(got, local.text);
  EXPECT_EQ(r.route.tier, Tier::Device);
  EXPECT_FALSE(r.route.escalated);
}

TEST(Orchestrator, StreamDroppedAfterTextReachedClientIsAnError) {
  FakeCloud cloud;
  cloud.set_mode(FakeMode::Drop);
  cloud.set_reply("this answer is long enough to be cut in the middle");
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  std::string got;
  StreamFn sink = [&](std::string_view d) {
    got += d;
    return true;
  };
  HybridResponse r = o.handle({chat("q"), "d", "", -1}, local.fn(), &sink);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.result.finish_reason, "error");
  EXPECT_EQ(r.route.cloud_error, "dropped");
  EXPECT_EQ(local.calls, 0);  // no device text spliced after the cloud's partial answer
  EXPECT_FALSE(got.empty());
}

// With a stream-break handler (the server tells the client to discard the partial text), the
// device answers in the same stream instead of failing.
TEST(Orchestrator, StreamDroppedAfterTextRestartsOnTheDeviceWhenAllowed) {
  FakeCloud cloud;
  cloud.set_mode(FakeMode::Drop);
  cloud.set_reply("this answer is long enough to be cut in the middle");
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  std::string got, break_message;
  StreamFn sink = [&](std::string_view d) {
    got += d;
    return true;
  };
  StreamBreakFn on_break = [&](const std::string& msg) {
    break_message = msg;
    got.clear();  // what a client honouring the restart does
    return true;
  };
  HybridResponse r = o.handle({chat("q"), "d", "", -1}, local.fn(), &sink, on_break);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(break_message.empty());
  EXPECT_EQ(r.route.tier, Tier::Device);
  EXPECT_TRUE(r.route.fallback);
  EXPECT_EQ(r.route.reason, "cloud_error");
  EXPECT_EQ(r.route.cloud_error, "dropped");
  EXPECT_NE(std::find(r.route.notes.begin(), r.route.notes.end(), "stream_interrupted"), r.route.notes.end());
  EXPECT_EQ(local.calls, 1);
  EXPECT_EQ(got, local.text);
  EXPECT_EQ(r.result.text, local.text);
  // A handler that declines (client gone) leaves the old behaviour: the request fails.
  HybridResponse r2 = o.handle({chat("q"), "d2", "", -1}, local.fn(), &sink, [](const std::string&) { return false; });
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(local.calls, 1);
}

TEST(Orchestrator, AuditLogNeverContainsPii) {
  FakeCloud cloud;
  std::string path = ::testing::TempDir() + "/hybrid_audit_test.jsonl";
  std::remove(path.c_str());
  Policy p = policy_for(cloud, Mode::PreferCloud);
  p.name = "audit-profile";
  p.audit.path = path;
  p.audit.fsync = "always";
  p.pii.patterns.push_back({"employee", "EMP-[0-9]{6}"});
  p.pattern_actions["EMPLOYEE"] = PrivacyAction::Redact;
  const std::vector<std::string> secrets = {"wang.fang@corp-mail.com.cn", "13912345678", "11010519491231002X",
                                            "4111 1111 1111 1111", "192.168.7.42", "2001:db8::7", "粤B·8K888",
                                            "EMP-424242", "my secret prompt words"};
  {
    Orchestrator o(p, {2048, true});
    FakeLocal local;
    o.handle({chat("mail wang.fang@corp-mail.com.cn, phone 13912345678, my secret prompt words"), "id-1", "notes", -1},
             local.fn(), nullptr);
    o.handle({chat("身份证11010519491231002X 卡 4111 1111 1111 1111"), "id-2", "notes", -1}, local.fn(), nullptr);
    o.handle({chat("host 192.168.7.42 / 2001:db8::7, 车牌粤B·8K888, EMP-424242"), "id-3", "notes", -1}, local.fn(), nullptr);
    local.confident = false;
    o.handle({chat("again 13912345678"), "id-4", "notes", -1}, local.fn(), nullptr);
  }
  std::ifstream in(path);
  ASSERT_TRUE(in);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& s : secrets) EXPECT_EQ(content.find(s), std::string::npos) << s;
  EXPECT_EQ(content.find("1391234"), std::string::npos);
  std::vector<json> lines;
  std::istringstream ls(content);
  for (std::string line; std::getline(ls, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["request_id"], "id-1");
  EXPECT_EQ(lines[0]["profile"], "audit-profile");
  EXPECT_EQ(lines[0]["pii"]["EMAIL"], 1);
  EXPECT_EQ(lines[0]["pii"]["PHONE"], 1);
  EXPECT_EQ(lines[0]["route"]["tier"], "cloud");
  EXPECT_EQ(lines[0]["prompt_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(lines[1]["route"]["reason"], "privacy_block");
  EXPECT_EQ(lines[1]["pii"]["ID_CARD"], 1);
  EXPECT_EQ(lines[1]["pii"]["BANK_CARD"], 1);
  EXPECT_EQ(lines[2]["pii"]["PATTERN"], 1);
  EXPECT_EQ(lines[2]["pii"]["PLATE"], 1);
  EXPECT_TRUE(lines[2]["time"].is_string());
  // And the cloud never saw the PII values either (the plain prompt words may go there).
  std::string sent = all_cloud_bodies(cloud);
  EXPECT_GE(cloud.requests(), 2);
  for (size_t k = 0; k + 1 < secrets.size(); ++k) EXPECT_EQ(sent.find(secrets[k]), std::string::npos) << secrets[k];
  std::remove(path.c_str());
}

TEST(Orchestrator, ConcurrentRequestsShareBudgetAndAudit) {
  FakeCloud cloud;
  std::string path = ::testing::TempDir() + "/hybrid_audit_concurrent_orch.jsonl";
  std::remove(path.c_str());
  Policy p = policy_for(cloud);
  p.audit.path = path;
  Orchestrator o(p, {2048, true});
  std::vector<std::thread> threads;
  std::atomic<int> cloud_answers{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      FakeLocal local;
      local.confident = t % 2 == 0;
      for (int i = 0; i < 10; ++i) {
        HybridResponse r = o.handle({chat("q " + std::to_string(i) + " a@b.cn"), "c", "", -1}, local.fn(), nullptr);
        EXPECT_TRUE(r.ok);
        if (r.route.tier == Tier::Cloud) {
          ++cloud_answers;
          EXPECT_EQ(r.result.text, "echo: q " + std::to_string(i) + " a@b.cn");  // restored per request
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(cloud_answers.load(), 20);
  EXPECT_EQ(o.budget().snapshot().total_requests, 40);
  EXPECT_EQ(o.budget().snapshot().cloud_requests, 20);
  std::ifstream in(path);
  int lines = 0;
  for (std::string l; std::getline(in, l); ++lines) {
    json j;
    EXPECT_NO_THROW(j = json::parse(l));
  }
  EXPECT_EQ(lines, 40);
  EXPECT_EQ(all_cloud_bodies(cloud).find("a@b.cn"), std::string::npos);
  std::remove(path.c_str());
}

// The "user" field, tool definitions, stop strings and metadata reach the cloud as well, so they
// are scanned and redacted like the messages (found by the server integration review).
TEST(Orchestrator, PrivateDataOutsideMessagesIsRedactedOrBlocked) {
  FakeCloud cloud;
  Orchestrator o(policy_for(cloud, Mode::PreferCloud), {2048, true});
  FakeLocal local;
  json b = chat("hello");
  b["user"] = "zhang.wei@example.com";
  b["tools"] = json::array({{{"type", "function"},
                             {"function", {{"name", "notify"}, {"description", "Mails ops.team@example.com"},
                                           {"parameters", {{"type", "object"}}}}}}});
  b["stop"] = json::array({"13812345678"});
  HybridResponse r = o.handle({b, "r1", "", -1}, local.fn(), nullptr);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.route.tier, Tier::Cloud);
  EXPECT_TRUE(r.route.redacted);
  const std::string sent = all_cloud_bodies(cloud);
  for (const char* v : {"zhang.wei@example.com", "ops.team@example.com", "13812345678"})
    EXPECT_EQ(sent.find(v), std::string::npos) << v;
  ASSERT_EQ(cloud.requests(), 1);
  EXPECT_EQ(cloud.bodies()[0]["user"].get<std::string>().rfind("[EMAIL_", 0), 0u);
  EXPECT_EQ(cloud.bodies()[0]["tools"][0]["function"]["name"], "notify");
  // A blocked kind anywhere in the request keeps it on the device.
  json b2 = chat("hello");
  b2["messages"][1]["name"] = "11010519491231002X";
  HybridResponse r2 = o.handle({b2, "r2", "", -1}, local.fn(), nullptr);
  EXPECT_EQ(r2.route.tier, Tier::Device);
  EXPECT_EQ(r2.route.reason, "privacy_block");
  EXPECT_EQ(cloud.requests(), 1);
}
