// The orchestrator with the real SmolLM2 model as the device tier (Session, greedy) and the fake
// cloud: token log-probs/entropies from the sampler drive escalation. Prints the confidence
// scores of a few answers (useful when choosing thresholds). Skips without the model file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "fake_cloud.h"
#include "hybrid/orchestrator.h"
#include "runtime/engine.h"

using namespace edgellm;
using namespace edgellm::hybrid;
using nlohmann::json;

namespace {
std::string model_path() {
  const char* dir = std::getenv("EDGELLM_MODEL_DIR");
  std::string d = dir ? dir : std::string(std::getenv("HOME") ? std::getenv("HOME") : "") + "/.cache/edgellm/models";
  return d + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}
}  // namespace

TEST(OrchestratorRealModel, SamplerScoresDriveEscalation) {
  std::string path = model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model " << path << " is absent (set EDGELLM_MODEL_DIR)";
  runtime::EngineOptions eo;
  eo.n_threads = 2;
  auto engine = runtime::Engine::load(path, eo);
  runtime::Session session(*engine, 512);

  // The request as the server hands it over: the body for the cloud, prompt and parameters for
  // the device.
  auto request = [&](const json& body) {
    std::vector<chat::Message> msgs;
    for (const auto& m : body["messages"]) msgs.push_back({m["role"], m["content"]});
    std::string text = engine->formatter().format(msgs, true);
    const auto& tok = engine->tokenizer();
    HybridRequest req{body, "real", "", -1};
    req.prompt = tok.encode(text, tok.add_bos_default(), true);
    req.params.sampling.temperature = 0;
    req.params.max_tokens = body.value("max_tokens", 24);
    req.params.stop = engine->formatter().stop_strings();
    return req;
  };
  SessionBackend local(session);

  hybrid::testing::FakeCloud cloud;
  Policy p = default_policy();
  p.cloud.base_url = cloud.base_url();
  p.cloud.max_retries = 0;
  p.confidence.min_quantile_logprob = -2.5;
  p.confidence.max_mean_entropy = 1.5;
  Orchestrator o(p, {512, false});
  const char* questions[] = {"What is the capital of France?", "What is 123 times 47?",
                             "Name the author of 'One Hundred Years of Solitude'."};
  int escalations = 0;
  for (const char* q : questions) {
    int before = cloud.requests();
    json body = {{"messages", {{{"role", "user"}, {"content", q}}}}, {"max_tokens", 24}};
    // Run the device model alone first to get the statistics the router will see.
    const HybridRequest req = request(body);
    runtime::GenerateResult ref = local.generate(req.prompt, req.params, nullptr);
    ASSERT_FALSE(ref.token_logprobs.empty());
    ASSERT_EQ(ref.token_logprobs.size(), ref.token_entropies.size());
    ASSERT_EQ(int64_t(ref.token_logprobs.size()), ref.n_generated);
    for (size_t i = 0; i < ref.token_logprobs.size(); ++i) {
      ASSERT_LE(ref.token_logprobs[i], 1e-5f);
      ASSERT_GE(ref.token_entropies[i], -1e-5f);
      ASSERT_LE(ref.token_entropies[i], std::log(49152.0f) + 1e-3f);
      // Greedy picks the most likely token, so its probability is at least 1/n_vocab.
      ASSERT_GE(ref.token_logprobs[i], -std::log(49152.0f) - 1e-3f);
    }
    std::vector<float> s = ref.token_logprobs;
    std::sort(s.begin(), s.end());
    double pos = 0.1 * double(s.size() - 1);
    size_t lo = size_t(pos);
    double p10 = s[lo] + (s[std::min(lo + 1, s.size() - 1)] - s[lo]) * (pos - double(lo));
    double mean_h = 0;
    for (float h : ref.token_entropies) mean_h += h;
    mean_h /= double(ref.token_entropies.size());
    bool expect_escalate = p10 < -2.5 || mean_h > 1.5;

    HybridResponse r = o.handle(req, local, nullptr);  // greedy: same answer again
    std::printf("  %-55s p10 logprob %7.3f  mean entropy %6.3f  -> %s (%s)  local: %s\n", q, p10, mean_h,
                tier_name(r.route.tier), r.route.reason.c_str(), ref.text.substr(0, 40).c_str());
    EXPECT_NEAR(r.route.scores["quantile_logprob"].get<double>(), p10, 1e-4);
    EXPECT_NEAR(r.route.scores["mean_entropy"].get<double>(), mean_h, 1e-4);
    EXPECT_EQ(r.route.escalated, expect_escalate);
    EXPECT_EQ(cloud.requests() - before, expect_escalate ? 1 : 0);
    escalations += expect_escalate;
  }
  std::printf("  escalated %d of 3\n", escalations);
}
