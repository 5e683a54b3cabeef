// Speculative decoding on the real models: the output is token for token the output of plain
// decoding (greedy, and with penalties), for prompts the answer repeats (where prompt lookup's
// drafts are accepted) and open ones (where most are rejected); the session afterwards holds
// exactly what plain decoding leaves. Short generations keep each test to seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "ops/ops.h"
#include "runtime/pass_cost.h"
#include "runtime/speculative.h"
#include "model_cache.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

std::unique_ptr<Engine> load_or_null(const std::string& name) { return testing::load_cached_or_null(name); }

const char* kCode =
    "def mean(values):\n"
    "    total = 0\n"
    "    for v in values:\n"
    "        total += v\n"
    "    return total / len(values)\n";

std::vector<int32_t> chat(const Engine& e, const std::string& text) {
  return e.tokenize_chat(std::vector<chat::Message>{{"user", text}}, true);
}

GenerateParams greedy(int32_t n) {
  GenerateParams gp;
  gp.sampling.temperature = 0.f;
  gp.max_tokens = n;
  return gp;
}

// Plain and speculative generation from fresh sessions must agree exactly.
GenerateResult expect_same(const Engine& e, const std::vector<int32_t>& prompt, const GenerateParams& gp,
                           int32_t draft_max = 8, int32_t n_ctx = 1024, const PassCosts& costs = {}) {
  Session plain(e, n_ctx), spec(e, n_ctx);
  const GenerateResult a = plain.generate(prompt, gp);
  SpeculativeOptions so;
  so.proposer = std::make_shared<PromptLookupProposer>();
  so.draft_max = draft_max;
  so.learn_cost = false;  // draft lengths independent of the machine's speed
  so.costs = costs;
  std::string streamed;
  const GenerateResult b = generate_speculative(spec, prompt, gp, so, [&](const std::string& p) {
    streamed += p;
    return true;
  });
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.text, a.text);
  EXPECT_EQ(streamed, a.text);
  EXPECT_EQ(b.finish_reason, a.finish_reason);
  EXPECT_EQ(b.token_logprobs, a.token_logprobs);
  EXPECT_EQ(spec.tokens(), plain.tokens()) << "the session must hold what plain decoding leaves";
  EXPECT_EQ(spec.cache().size(), static_cast<int32_t>(spec.tokens().size()));
  EXPECT_LE(b.n_draft_accepted, b.n_drafted);
  EXPECT_EQ(b.n_generated, a.n_generated);
  return b;
}

void check_model(const char* file) {
  auto e = load_or_null(file);
  if (!e) GTEST_SKIP() << file << " absent (scripts/fetch-models)";
  const bool exact_was = ops::exact_activations();
  ops::set_exact_activations(false);  // the batch-invariant default path (see speculative.h)
  // Input-grounded: the answer copies the code, so lookup drafts are accepted.
  const auto grounded =
      expect_same(*e, chat(*e, std::string("Rename the function to average and repeat the code:\n") + kCode),
                  greedy(48));
  EXPECT_GT(grounded.n_draft_accepted, 8) << "lookup drafts were accepted";
  EXPECT_LT(grounded.n_decode_passes, grounded.n_generated) << "fewer passes than tokens";
  // Open prompt: drafts are mostly rejected, the output still agrees.
  expect_same(*e, chat(*e, "Write a short poem about the sea."), greedy(32));
  ops::set_exact_activations(exact_was);
}

TEST(Speculative, SmolLM2SameTokensAsPlainGreedy) { check_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(Speculative, QwenCoder05BSameTokensAsPlainGreedy) { check_model("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"); }

// Drafts priced by a table (pass_cost.h): with nearly free passes lookup drafts long, with dear
// ones it stops drafting; the output is plain greedy decoding's either way.
TEST(Speculative, MeasuredPassCostsSetTheDraftsAndKeepTheOutput) {
  auto e = load_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!e) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  const bool exact_was = ops::exact_activations();
  ops::set_exact_activations(false);
  const auto prompt = chat(*e, std::string("Rename the function to average and repeat the code:\n") + kCode);
  PassCosts cheap, dear;
  for (int n = 1; n <= 9; ++n) {
    cheap.verify.push_back(1.f + 0.001f * (n - 1));
    dear.verify.push_back(static_cast<float>(n));  // a k-token pass costs k: no draft pays
  }
  const auto a = expect_same(*e, prompt, greedy(48), 8, 1024, cheap);
  EXPECT_GT(a.n_draft_accepted, 8);
  EXPECT_GT(static_cast<double>(a.n_drafted) / a.n_decode_passes, 2.0) << "cheap passes: long drafts";
  const auto b = expect_same(*e, prompt, greedy(48), 8, 1024, dear);
  EXPECT_LT(b.n_drafted, a.n_drafted / 2) << "dear passes: few drafts (probes only)";
  // A table measured on this machine: one entry per length, the first 1, never decreasing.
  const PassCosts m = measure_pass_costs(*e, 5, 1, 32);
  ASSERT_EQ(m.verify.size(), 5u);
  EXPECT_EQ(m.verify[0], 1.f);
  for (size_t i = 1; i < m.verify.size(); ++i) {
    EXPECT_GE(m.verify[i], m.verify[i - 1]);
    EXPECT_TRUE(std::isfinite(m.verify[i]));
  }
  expect_same(*e, prompt, greedy(24), 4, 1024, m);
  EXPECT_THROW(measure_pass_costs(*e, 0), InvalidArgument);
  EXPECT_THROW(measure_pass_costs(*e, 4, 0), InvalidArgument);
  // A draft's guess by bytes: a model against itself costs one pass, less with a cut head.
  EXPECT_FLOAT_EQ(guess_cost_from_bytes(*e, *e, 0), 1.f);
  const float cut = guess_cost_from_bytes(*e, *e, 1024);
  EXPECT_LT(cut, 1.f);
  EXPECT_GT(cut, 0.f);
  ops::set_exact_activations(exact_was);
}

TEST(Speculative, PenaltiesContextLimitAndStopStringsAgree) {
  auto e = load_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!e) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  const auto prompt = chat(*e, std::string("Repeat this code:\n") + kCode);
  GenerateParams gp = greedy(48);
  gp.sampling.repeat_penalty = 1.3f;  // history-dependent logits: each row sees its own history
  expect_same(*e, prompt, gp);
  // A context that fills mid-draft ends with "length" at the same token.
  const int32_t n_ctx = static_cast<int32_t>(prompt.size()) + 20;
  const auto r = expect_same(*e, prompt, greedy(-1), 8, n_ctx);
  EXPECT_EQ(r.finish_reason, "length");
  // A stop string inside an accepted draft ends the text where plain decoding ends it.
  GenerateParams stop = greedy(48);
  stop.stop = {"total +="};
  expect_same(*e, prompt, stop);
  // Draft length 0 is plain decoding.
  const auto plain = expect_same(*e, prompt, greedy(16), 0);
  EXPECT_EQ(plain.n_drafted, 0);
  EXPECT_EQ(plain.n_decode_passes, plain.n_generated - 1) << "the last token is never run";
}

TEST(Speculative, SecondTurnReusesTheRolledBackCache) {
  auto e = load_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!e) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  SpeculativeOptions so;
  so.proposer = std::make_shared<PromptLookupProposer>();
  so.learn_cost = false;
  Session plain(*e, 1024), spec(*e, 1024);
  auto p1 = chat(*e, std::string("Repeat this code:\n") + kCode);
  const auto a1 = plain.generate(p1, greedy(32));
  const auto b1 = generate_speculative(spec, p1, greedy(32), so);
  ASSERT_EQ(b1.tokens, a1.tokens);
  // Next turn: the prompt continues the conversation; both reuse their caches.
  std::vector<int32_t> p2 = plain.tokens();
  const auto more = e->tokenizer().encode(" Now shorter:", false, false);
  p2.insert(p2.end(), more.begin(), more.end());
  const auto a2 = plain.generate(p2, greedy(24));
  const auto b2 = generate_speculative(spec, p2, greedy(24), so);
  EXPECT_EQ(b2.n_prompt_evaluated, a2.n_prompt_evaluated);
  EXPECT_EQ(b2.tokens, a2.tokens);
}

}  // namespace
}  // namespace edgellm::runtime
