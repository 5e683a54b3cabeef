// Batch scheduler on the real default model (skipped when absent): concurrent requests give
// the same greedy tokens as sequential Session::generate runs, prefix reuse, cancellation
// frees the slot, queue limits, errors inside a sequence never leave a slot busy, and
// embeddings pool the final hidden states.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <limits>

#include "ops/ops.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

std::string model_path() {
  const char* d = std::getenv("EDGELLM_MODEL_DIR");
  std::filesystem::path dir = d ? d : std::filesystem::path(std::getenv("HOME") ? std::getenv("HOME") : "/root") /
                                          ".cache/edgellm/models";
  return (dir / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
}

class SchedulerTest : public ::testing::Test {
 protected:
  // The int8 kernels tile tokens (1-2 vs 4 per tile), so their rounding depends on how many
  // rows a pass holds; exact activations make every row independent of its batch, which is
  // what lets batched and sequential runs be compared token for token.
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
  std::vector<int32_t> chat_prompt(const std::string& user) const {
    const auto text = engine_->formatter().format({{"user", user}}, true);
    return engine_->tokenizer().encode(text, engine_->tokenizer().add_bos_default(), true);
  }
  static GenerateParams greedy(int32_t n) {
    GenerateParams p;
    p.sampling.temperature = 0;
    p.max_tokens = n;
    return p;
  }
  // Submits and returns a future of the outcome.
  static std::pair<std::shared_ptr<Job>, std::future<JobOutcome>> submit(Scheduler& s, JobRequest r) {
    auto prom = std::make_shared<std::promise<JobOutcome>>();
    auto fut = prom->get_future();
    r.on_done = [prom](JobOutcome& o) { prom->set_value(std::move(o)); };
    auto job = s.submit(std::move(r));
    return {job, std::move(fut)};
  }
  static Engine* engine_;
  static bool was_exact_;
};
Engine* SchedulerTest::engine_ = nullptr;
bool SchedulerTest::was_exact_ = false;

TEST_F(SchedulerTest, ConcurrentGreedyMatchesSequentialSessions) {
  const std::vector<std::string> users = {"What is the capital of France?", "Name three colors.",
                                          "Write a haiku about the sea.", "Count from one to five."};
  std::vector<std::vector<int32_t>> prompts;
  std::vector<GenerateResult> expected;
  for (const auto& u : users) {
    prompts.push_back(chat_prompt(u));
    Session session(*engine_, 512);
    expected.push_back(session.generate(prompts.back(), greedy(10)));
  }
  // 3 slots for 4 requests: one waits in the queue and joins a running batch later.
  Scheduler sched(*engine_, {3, 512, 8, 16});
  std::vector<std::future<JobOutcome>> futs;
  std::vector<std::string> streamed(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    JobRequest r;
    r.prompt = prompts[i];
    r.params = greedy(10);
    r.on_text = [&streamed, i](const std::string& piece) { streamed[i] += piece; return true; };
    auto [job, fut] = submit(sched, std::move(r));
    ASSERT_NE(job, nullptr);
    futs.push_back(std::move(fut));
  }
  for (size_t i = 0; i < users.size(); ++i) {
    JobOutcome o = futs[i].get();
    EXPECT_EQ(o.error, "");
    EXPECT_EQ(o.result.tokens, expected[i].tokens) << users[i];
    EXPECT_EQ(o.result.text, expected[i].text) << users[i];
    EXPECT_EQ(streamed[i], o.result.text);
    EXPECT_EQ(o.result.finish_reason, expected[i].finish_reason);
    EXPECT_EQ(o.result.n_prompt, static_cast<int32_t>(prompts[i].size()));
  }
  const auto st = sched.stats();
  EXPECT_EQ(st.active, 0);
  EXPECT_EQ(st.queued, 0);
  // Batching happened: fewer passes than tokens run.
  EXPECT_LT(st.steps, st.batched_tokens);
}

TEST_F(SchedulerTest, ReusesTheCachedPrefixOfASlot) {
  Scheduler sched(*engine_, {1, 512, 4, 64});
  const auto p = chat_prompt("Tell me about cats.");
  JobRequest a;
  a.prompt = p;
  a.params = greedy(6);
  auto first = submit(sched, a).second.get();
  auto second = submit(sched, a).second.get();
  EXPECT_EQ(first.result.n_prompt_evaluated, static_cast<int32_t>(p.size()));
  EXPECT_EQ(second.result.n_prompt_evaluated, 1);  // only the last prompt token is rerun
  EXPECT_EQ(first.result.tokens, second.result.tokens);
  Session session(*engine_, 512);
  EXPECT_EQ(session.generate(p, greedy(6)).tokens, second.result.tokens);
}

TEST_F(SchedulerTest, CancellationFreesTheSlot) {
  Scheduler sched(*engine_, {1, 512, 4, 64});
  JobRequest r;
  r.prompt = chat_prompt("Write a long story about a dragon.");
  r.params = greedy(400);
  r.params.ignore_eos = true;
  std::shared_ptr<Job> holder;
  std::mutex mu;
  int pieces = 0;
  r.on_text = [&](const std::string&) {
    std::lock_guard<std::mutex> lk(mu);
    if (++pieces == 3 && holder) holder->cancel();
    return true;
  };
  std::future<JobOutcome> fut;
  {
    std::lock_guard<std::mutex> lk(mu);
    auto [job, f] = submit(sched, r);
    holder = job;
    fut = std::move(f);
  }
  JobOutcome o = fut.get();
  EXPECT_EQ(o.result.finish_reason, "cancelled");
  EXPECT_LT(o.result.n_generated, 400);
  EXPECT_EQ(sched.stats().active, 0);
  // The only slot serves the next request.
  JobRequest next;
  next.prompt = chat_prompt("Hi");
  next.params = greedy(3);
  JobOutcome o2 = submit(sched, next).second.get();
  EXPECT_EQ(o2.error, "");
  EXPECT_EQ(o2.result.n_generated, 3);
}

TEST_F(SchedulerTest, CallbackReturningFalseCancels) {
  Scheduler sched(*engine_, {1, 512, 4, 64});
  JobRequest r;
  r.prompt = chat_prompt("Write a long story.");
  r.params = greedy(300);
  r.params.ignore_eos = true;
  r.on_text = [](const std::string&) { return false; };  // client gone at the first write
  JobOutcome o = submit(sched, r).second.get();
  EXPECT_EQ(o.result.finish_reason, "cancelled");
  EXPECT_LE(o.result.n_generated, 3);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST_F(SchedulerTest, FullQueueRefusesAndCancelledQueuedJobsAreDropped) {
  Scheduler sched(*engine_, {1, 512, 1, 64});
  JobRequest long_job;
  long_job.prompt = chat_prompt("Write a long story.");
  long_job.params = greedy(400);
  long_job.params.ignore_eos = true;
  auto [a, fa] = submit(sched, long_job);
  ASSERT_NE(a, nullptr);
  JobRequest b = long_job;
  b.params.max_tokens = 2;
  auto [bj, fb] = submit(sched, b);
  ASSERT_NE(bj, nullptr);
  auto [cj, fc] = submit(sched, b);
  EXPECT_EQ(cj, nullptr) << "third request must be refused: 1 slot + 1 queued";
  a->cancel();
  EXPECT_EQ(fa.get().result.finish_reason, "cancelled");
  JobOutcome ob = fb.get();
  EXPECT_EQ(ob.result.n_generated, 2);
  EXPECT_EQ(sched.stats().active, 0);
  EXPECT_EQ(sched.stats().queued, 0);
}

TEST_F(SchedulerTest, RejectsBadPrompts) {
  Scheduler sched(*engine_, {1, 64, 4, 64});
  JobRequest r;
  EXPECT_THROW(sched.submit(r), InvalidArgument);  // empty
  r.prompt.assign(64, 1);
  EXPECT_THROW(sched.submit(r), InvalidArgument);  // does not fit with room to generate
  r.prompt = {1, 2, engine_->config().n_vocab};
  EXPECT_THROW(sched.submit(r), InvalidArgument);  // id outside the vocabulary
  EXPECT_EQ(sched.stats().active, 0);
}

// A constraint that throws partway: the request fails with a message and the slot is free.
class ThrowingConstraint : public TokenConstraint {
 public:
  void mask(float*) override {}
  void accept(int32_t) override {
    if (++n_ == 3) throw InvalidArgument("constraint broke");
  }
  int n_ = 0;
};

TEST_F(SchedulerTest, ErrorInsideASequenceFailsOnlyThatRequest) {
  Scheduler sched(*engine_, {2, 512, 4, 64});
  JobRequest bad;
  bad.prompt = chat_prompt("Hello there");
  bad.params = greedy(20);
  bad.params.ignore_eos = true;
  bad.params.constraint = std::make_shared<ThrowingConstraint>();
  JobRequest good;
  good.prompt = chat_prompt("What is two plus two?");
  good.params = greedy(8);
  auto fb = submit(sched, bad).second;
  auto fg = submit(sched, good).second;
  JobOutcome ob = fb.get();
  EXPECT_NE(ob.error.find("constraint broke"), std::string::npos);
  JobOutcome og = fg.get();
  EXPECT_EQ(og.error, "");
  Session session(*engine_, 512);
  EXPECT_EQ(og.result.tokens, session.generate(good.prompt, greedy(8)).tokens);
  EXPECT_EQ(sched.stats().active, 0);
}

TEST_F(SchedulerTest, EmbeddingIsTheMeanOfFinalHiddenStates) {
  const auto ids = engine_->tokenizer().encode("The quick brown fox", false, false);
  // Direct forward over the whole input with every row's hidden state.
  const auto& cfg = engine_->config();
  model::KvCache kv(cfg, 64);
  model::Workspace ws;
  model::Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), &kv, true);
  std::vector<float> logits(ids.size() * cfg.n_vocab), hidden(ids.size() * cfg.n_embd);
  engine_->model().forward(batch, ws, engine_->pool(), logits.data(), hidden.data());
  std::vector<double> mean(cfg.n_embd, 0.0);
  for (size_t r = 0; r < ids.size(); ++r)
    for (int32_t k = 0; k < cfg.n_embd; ++k) mean[k] += hidden[r * cfg.n_embd + k] / ids.size();

  // Small batch budget: the input is split over several passes, next to a generating request.
  Scheduler sched(*engine_, {2, 64, 4, 2});
  JobRequest gen;
  gen.prompt = chat_prompt("Hi");
  gen.params = greedy(4);
  auto fg = submit(sched, gen).second;
  JobRequest e;
  e.prompt = ids;
  e.embedding = true;
  JobOutcome o = submit(sched, e).second.get();
  ASSERT_EQ(o.error, "");
  ASSERT_EQ(o.embedding.size(), static_cast<size_t>(cfg.n_embd));
  for (int32_t k = 0; k < cfg.n_embd; ++k) EXPECT_NEAR(o.embedding[k], mean[k], 1e-5 * (1 + std::fabs(mean[k])));
  EXPECT_EQ(o.result.n_generated, 0);
  EXPECT_EQ(fg.get().result.n_generated, 4);
}

}  // namespace
}  // namespace edgellm::runtime
