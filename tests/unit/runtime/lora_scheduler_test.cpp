// Per-request LoRA adapters in the batch scheduler: requests with different adapter sets share
// forward passes and each gets what a Session with its set alone gives; a slot's cached prefix
// serves only a request with the same set (the prefix cache is keyed by adapters and scales).
#include <gtest/gtest.h>

#include <future>

#include "lora_util.h"
#include "model_cache.h"
#include "ops/ops.h"
#include "runtime/scheduler.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

class LoraScheduler : public ::testing::Test {
 protected:
  // The default int8 kernels: a row's arithmetic does not depend on its batch (the model's
  // batch-invariance tests), so batched and sequential runs compare token for token.
  void SetUp() override {
    engine_ = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!engine_) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
    was_exact_ = ops::exact_activations();
    ops::set_exact_activations(false);
    // Every layer's attn_q and ffn_down: enough to change the greedy text.
    set_a_ = {{{testing::make_lora(*engine_, 1, bytes_a_, 0.1f, engine_->config().n_layer), 1.0f}}};
    set_b_ = {{{set_a_.entries[0].adapter, -0.7f}}};
    prompt_ = engine_->tokenize_prompt("The old lighthouse keeper said that the sea");
  }
  void TearDown() override {
    if (engine_) ops::set_exact_activations(was_exact_);
  }
  GenerateResult sequential(const model::LoraSet& set) {
    Session s(*engine_, 128);
    s.set_lora(set);
    return s.generate(prompt_, greedy());
  }
  static GenerateParams greedy() {
    GenerateParams p;
    p.sampling.temperature = 0;
    p.max_tokens = 8;
    p.ignore_eos = true;
    return p;
  }
  std::future<JobOutcome> submit(Scheduler& s, const model::LoraSet& set) {
    auto prom = std::make_shared<std::promise<JobOutcome>>();
    auto fut = prom->get_future();
    JobRequest r;
    r.prompt = prompt_;
    r.params = greedy();
    r.lora = set;
    r.on_done = [prom](JobOutcome& o) { prom->set_value(std::move(o)); };
    EXPECT_NE(s.submit(std::move(r)), nullptr);
    return fut;
  }

  std::unique_ptr<Engine> engine_;
  bool was_exact_ = false;
  std::vector<uint8_t> bytes_a_;
  model::LoraSet set_a_, set_b_;
  std::vector<int32_t> prompt_;
};

TEST_F(LoraScheduler, DifferentAdaptersShareABatchAndEachGetsItsOwnAnswer) {
  const auto base = sequential({}), a = sequential(set_a_), b = sequential(set_b_);
  ASSERT_NE(base.tokens, a.tokens) << "the adapter must change the text for this test to mean anything";
  ASSERT_NE(base.tokens, b.tokens);
  Scheduler sched(*engine_, {3, 128, 8, 64});
  auto fa = submit(sched, set_a_), f0 = submit(sched, {}), fb = submit(sched, set_b_);
  const JobOutcome oa = fa.get(), o0 = f0.get(), ob = fb.get();
  EXPECT_EQ(oa.result.tokens, a.tokens);
  EXPECT_EQ(o0.result.tokens, base.tokens);
  EXPECT_EQ(ob.result.tokens, b.tokens);
  const auto st = sched.stats();
  EXPECT_LT(st.steps, st.batched_tokens) << "the three requests shared passes";
}

TEST_F(LoraScheduler, CachedPrefixServesOnlyTheSameAdapterSet) {
  const auto base = sequential({});
  Scheduler sched(*engine_, {1, 128, 4, 64});  // one slot: every request meets the last one's cache
  const int32_t n = static_cast<int32_t>(prompt_.size());
  const JobOutcome first = submit(sched, set_a_).get();
  EXPECT_EQ(first.result.n_prompt_evaluated, n);
  const JobOutcome same = submit(sched, set_a_).get();
  EXPECT_EQ(same.result.n_prompt_evaluated, 1) << "same adapters: the prefix is reused";
  EXPECT_EQ(same.result.tokens, first.result.tokens);
  const JobOutcome other = submit(sched, set_b_).get();
  EXPECT_EQ(other.result.n_prompt_evaluated, n) << "another scale is another set: no reuse";
  const JobOutcome none = submit(sched, {}).get();
  EXPECT_EQ(none.result.n_prompt_evaluated, n) << "the base must not reuse a prefix computed under an adapter";
  EXPECT_EQ(none.result.tokens, base.tokens);
}

TEST_F(LoraScheduler, AdapterForAnotherModelIsRefusedAtSubmit) {
  auto other = testing::load_cached_or_null("gemma-3-270m-q4_k_m.gguf");
  if (!other) GTEST_SKIP() << "Gemma 3 absent";
  std::vector<uint8_t> bytes;
  Scheduler sched(*engine_, {1, 128, 4, 64});
  JobRequest r;
  r.prompt = prompt_;
  r.lora = {{{testing::make_lora(*other, 2, bytes), 1.0f}}};
  EXPECT_THROW(sched.submit(std::move(r)), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::runtime
