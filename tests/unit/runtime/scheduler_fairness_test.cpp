// Scheduler policy and robustness, counted in forward passes (never seconds): the prefill budget
// split, a short prompt next to a long prefill getting its first token after one pass, a cancel
// honoured between the chunks of a long prefill, and a job that throws (invalid sampler
// parameters, a throwing callback) ending alone while the scheduler keeps serving. The model
// tests use the default SmolLM2 and skip when it is absent.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <numeric>
#include <stdexcept>

#include "ops/ops.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"

namespace edgellm::runtime {
namespace {

size_t sum(const std::vector<size_t>& v) { return std::accumulate(v.begin(), v.end(), size_t{0}); }

TEST(SharePrefillBudget, ShortPromptIsReadWholeNextToALongOne) {
  // The 3,100-token prompt of issue 17 next to a 4-token one: the short one is not cut.
  EXPECT_EQ(share_prefill_budget(256, {3100, 4}), (std::vector<size_t>{252, 4}));
  EXPECT_EQ(share_prefill_budget(256, {4, 3100}), (std::vector<size_t>{4, 252}));
}

TEST(SharePrefillBudget, LongPromptsSplitEquallyAndNeverExceedTheBudget) {
  EXPECT_EQ(share_prefill_budget(256, {3100, 3100}), (std::vector<size_t>{128, 128}));
  EXPECT_EQ(share_prefill_budget(256, {1000, 2000, 3000}), (std::vector<size_t>{85, 85, 86}));
  const auto s = share_prefill_budget(256, {100, 3100, 3100});
  EXPECT_EQ(sum(s), 256u);
  EXPECT_EQ(s[0], 85u);  // max-min fair: the 100-token one gets an equal share, not more
  // Everything fits: each request reads its whole remainder.
  EXPECT_EQ(share_prefill_budget(256, {10, 20, 30}), (std::vector<size_t>{10, 20, 30}));
  EXPECT_TRUE(share_prefill_budget(256, {}).empty());
}

TEST(SharePrefillBudget, TinyBudgetsStillMakeProgress) {
  // Fewer tokens than requests: the shortest get one each.
  EXPECT_EQ(share_prefill_budget(2, {50, 5, 7}), (std::vector<size_t>{0, 1, 1}));
  // Decode tokens filled the batch: one prefill token still moves.
  EXPECT_EQ(share_prefill_budget(0, {9, 3}), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(share_prefill_budget(1, {1}), (std::vector<size_t>{1}));
}

std::string model_path() {
  const char* d = std::getenv("EDGELLM_MODEL_DIR");
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir =
      d ? std::filesystem::path(d) : std::filesystem::path(home ? home : "/root") / ".cache/edgellm/models";
  return (dir / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
}

class SchedulerFairness : public ::testing::Test {
 protected:
  // Exact activations make a row's logits independent of the rest of its batch, so the chunked,
  // interleaved prefill can be compared token for token with a plain Session.
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(model_path())) return;
    was_exact_ = ops::exact_activations();
    ops::set_exact_activations(true);
    engine_ = Engine::load(model_path(), {2}).release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
    ops::set_exact_activations(was_exact_);
  }
  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "model " << model_path() << " is absent (set EDGELLM_MODEL_DIR)";
  }
  static std::vector<int32_t> text(const std::string& s) {
    const auto& tok = engine_->tokenizer();
    return tok.encode(s, tok.add_bos_default(), false);
  }
  static std::vector<int32_t> long_prompt() {
    std::string s;
    for (int i = 0; i < 16; ++i) s += "The river runs past the old mill and under the stone bridge. ";
    return text(s);
  }
  static GenerateParams greedy(int32_t n) {
    GenerateParams p;
    p.sampling.temperature = 0;
    p.max_tokens = n;
    return p;
  }
  static std::future<JobOutcome> submit(Scheduler& s, JobRequest r, std::shared_ptr<Job>* handle = nullptr) {
    auto prom = std::make_shared<std::promise<JobOutcome>>();
    auto fut = prom->get_future();
    r.on_done = [prom](JobOutcome& o) { prom->set_value(std::move(o)); };
    auto job = s.submit(std::move(r));
    EXPECT_NE(job, nullptr);
    if (handle) *handle = job;
    return fut;
  }

  // Holds the scheduler thread inside a finishing job's on_done, so that the jobs submitted
  // meanwhile are all admitted together at the next step: the test then knows exactly which
  // pass is the first one they share, whatever the machine's speed. The gate's prompt is the
  // start of `prefix_of`, so that request reuses the gate's slot, the first one.
  class Gate {
   public:
    Gate(Scheduler& s, const std::vector<int32_t>& prefix_of) {
      JobRequest r;
      r.prompt.assign(prefix_of.begin(), prefix_of.begin() + 3);
      r.params = greedy(1);
      auto released = release_.get_future().share();
      r.on_done = [this, released](JobOutcome&) {
        entered_.set_value();
        released.wait();
      };
      EXPECT_NE(s.submit(std::move(r)), nullptr);
      entered_.get_future().wait();
    }
    ~Gate() { open(); }  // never leave the scheduler thread waiting (a failed ASSERT)
    void open() {
      if (!opened_) release_.set_value();
      opened_ = true;
    }

   private:
    std::promise<void> entered_, release_;
    bool opened_ = false;
  };

  static Engine* engine_;
  static bool was_exact_;
};
Engine* SchedulerFairness::engine_ = nullptr;
bool SchedulerFairness::was_exact_ = false;

TEST_F(SchedulerFairness, ShortPromptNextToALongPrefillGetsItsFirstTokenAfterOnePass) {
  const int32_t n_batch = 16;
  Scheduler sched(*engine_, {2, 1024, 4, n_batch});
  JobRequest long_req, short_req;
  long_req.prompt = long_prompt();
  long_req.params = greedy(4);
  short_req.prompt = text("The capital of France is");
  short_req.params = greedy(4);
  ASSERT_GT(long_req.prompt.size(), 10u * n_batch);
  ASSERT_LT(short_req.prompt.size(), static_cast<size_t>(n_batch) / 2);

  Gate gate(sched, long_req.prompt);
  auto f_long = submit(sched, long_req);  // in the first slot: the old policy served it first
  auto f_short = submit(sched, short_req);
  gate.open();
  const JobOutcome o_short = f_short.get(), o_long = f_long.get();
  ASSERT_EQ(o_short.error, "");
  ASSERT_EQ(o_long.error, "");
  // The short prompt is read whole in the first shared pass and samples from it.
  EXPECT_EQ(o_short.ttft_steps, 1u);
  // The long one reads what is left of each pass (its own pace is unchanged).
  const size_t first = n_batch - short_req.prompt.size();
  const size_t rest = static_cast<size_t>(o_long.result.n_prompt_evaluated) - first;
  EXPECT_GE(o_long.ttft_steps, 1 + rest / n_batch);
  EXPECT_LE(o_long.ttft_steps, 2 + rest / (n_batch - 1));
  // Interleaving changed nothing in the answers.
  Session a(*engine_, 1024), b(*engine_, 1024);
  EXPECT_EQ(o_long.result.tokens, a.generate(long_req.prompt, greedy(4)).tokens);
  EXPECT_EQ(o_short.result.tokens, b.generate(short_req.prompt, greedy(4)).tokens);
}

TEST_F(SchedulerFairness, PassesShrinkToTheSharedBudgetWhileOthersRun) {
  SchedulerOptions opts{2, 1024, 4, 128};
  opts.n_batch_shared = 16;
  Scheduler sched(*engine_, opts);
  JobRequest long_req, short_req;
  long_req.prompt = long_prompt();
  long_req.params = greedy(1);
  short_req.prompt = text("The capital of France is");
  short_req.params = greedy(4);
  short_req.params.ignore_eos = true;
  const size_t n_short = short_req.prompt.size();
  ASSERT_LT(n_short, 16u);

  Gate gate(sched, long_req.prompt);
  auto f_long = submit(sched, long_req);
  auto f_short = submit(sched, short_req);
  gate.open();
  const JobOutcome o_short = f_short.get(), o_long = f_long.get();
  ASSERT_EQ(o_long.error, "");
  EXPECT_EQ(o_short.ttft_steps, 1u);
  EXPECT_EQ(o_short.result.n_generated, 4);
  // Passes 1-4 hold both (the short one reads its prompt, then decodes): 16 tokens each, of
  // which the long prompt gets 16 - n_short, then 15. Alone afterwards, it reads 128 a pass.
  const size_t read_shared = (16 - n_short) + 3 * 15;
  const size_t n_long = static_cast<size_t>(o_long.result.n_prompt_evaluated);
  ASSERT_GT(n_long, read_shared);
  EXPECT_EQ(o_long.ttft_steps, 4 + (n_long - read_shared + 127) / 128);
}

TEST_F(SchedulerFairness, CancelIsHonouredBetweenPrefillChunks) {
  const int32_t n_batch = 16;
  Scheduler sched(*engine_, {2, 1024, 4, n_batch});
  JobRequest long_req, short_req;
  long_req.prompt = long_prompt();
  long_req.params = greedy(4);
  short_req.prompt = text("The capital of France is");
  short_req.params = greedy(12);
  short_req.params.ignore_eos = true;
  // The short request cancels the long one from its first text piece, i.e. on the scheduler
  // thread while the long prompt is still being read; `passes` is how many passes had run.
  std::shared_ptr<Job> long_job;
  std::atomic<uint64_t> passes{0};
  std::atomic<bool> fired{false};
  short_req.on_text = [&](const std::string&) {
    if (!fired.exchange(true)) {
      passes = sched.stats().steps;
      long_job->cancel();
    }
    return true;
  };
  Gate gate(sched, long_req.prompt);
  const uint64_t before = sched.stats().steps;
  auto f_long = submit(sched, long_req, &long_job);
  auto f_short = submit(sched, short_req);
  gate.open();
  const JobOutcome o_long = f_long.get();
  const JobOutcome o_short = f_short.get();
  ASSERT_TRUE(fired.load());
  EXPECT_EQ(o_long.result.finish_reason, "cancelled");
  EXPECT_EQ(o_long.error, "");
  // Not one more chunk after the pass in which the cancel arrived.
  EXPECT_LE(static_cast<uint64_t>(o_long.result.n_prompt_evaluated), (passes.load() - before) * n_batch);
  EXPECT_LT(static_cast<size_t>(o_long.result.n_prompt_evaluated), long_req.prompt.size());
  EXPECT_EQ(o_short.result.n_generated, 12);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST_F(SchedulerFairness, InvalidSamplerParametersEndOnlyThatJob) {
  Scheduler sched(*engine_, {2, 512, 4, 64});
  JobRequest good;
  good.prompt = text("The capital of France is");
  good.params = greedy(3);
  good.params.ignore_eos = true;
  JobRequest bad = good;
  bad.params.sampling.repeat_penalty = 0;  // the sampler refuses it on the scheduler thread
  JobRequest nan = good;
  nan.params.sampling.temperature = std::numeric_limits<float>::quiet_NaN();

  auto f_good = submit(sched, good);
  auto f_bad = submit(sched, bad);
  auto f_nan = submit(sched, nan);
  const JobOutcome o_bad = f_bad.get(), o_nan = f_nan.get(), o_good = f_good.get();
  EXPECT_NE(o_bad.error.find("repeat_penalty"), std::string::npos) << o_bad.error;
  EXPECT_TRUE(o_bad.client_error);
  EXPECT_EQ(o_bad.result.finish_reason, "error");
  EXPECT_EQ(o_bad.result.n_generated, 0);
  EXPECT_NE(o_nan.error, "");
  EXPECT_TRUE(o_nan.client_error);
  EXPECT_EQ(o_good.error, "");
  EXPECT_EQ(o_good.result.n_generated, 3);
  // Still serving, with both slots free.
  EXPECT_EQ(submit(sched, good).get().result.n_generated, 3);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST_F(SchedulerFairness, ThrowingCallbacksEndOnlyTheirJob) {
  Scheduler sched(*engine_, {2, 512, 4, 64});
  JobRequest good;
  good.prompt = text("The capital of France is");
  good.params = greedy(4);
  good.params.ignore_eos = true;
  JobRequest bad = good;
  bad.on_text = [](const std::string&) -> bool { throw std::runtime_error("client buffer broke"); };
  auto f_bad = submit(sched, bad);
  auto f_good = submit(sched, good);
  const JobOutcome o_bad = f_bad.get();
  EXPECT_NE(o_bad.error.find("client buffer broke"), std::string::npos) << o_bad.error;
  EXPECT_FALSE(o_bad.client_error);
  EXPECT_EQ(f_good.get().result.n_generated, 4);

  // An on_done that throws is contained too; the next job runs.
  JobRequest throws_done = good;
  std::promise<void> reported;
  throws_done.on_done = [&reported](JobOutcome&) {
    reported.set_value();
    throw std::runtime_error("lost");
  };
  EXPECT_NE(sched.submit(std::move(throws_done)), nullptr);
  reported.get_future().wait();
  EXPECT_EQ(submit(sched, good).get().result.n_generated, 4);
  EXPECT_EQ(sched.stats().active, 0);
}

}  // namespace
}  // namespace edgellm::runtime
