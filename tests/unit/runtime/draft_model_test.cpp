// The draft-model proposer: a draft of the target's vocabulary gives the target's own greedy
// output (here the model drafting for itself, so nearly every guess is accepted, which also shows
// its cache follows the accepted text), and a draft of another vocabulary is refused at load.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <limits>
#include <memory>

#include "ops/ops.h"
#include "runtime/draft_model.h"
#include "runtime/scheduler.h"
#include "runtime/speculative.h"
#include "model_cache.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

std::string model_path(const std::string& name) { return testing::cached_model_path(name); }

const char* kSmol = "SmolLM2-135M-Instruct.Q4_1.gguf";

std::vector<int32_t> poem_prompt(const Engine& e) {
  return e.tokenize_chat(std::vector<chat::Message>{{"user", "Write a short poem about the sea."}}, true);
}

GenerateParams greedy(int32_t max_tokens) {
  GenerateParams gp;
  gp.sampling.temperature = 0.f;
  gp.max_tokens = max_tokens;
  return gp;
}

// One job through a scheduler of these options, to its end.
JobOutcome run_job(const Engine& e, const SchedulerOptions& so, const std::vector<int32_t>& prompt,
                   const GenerateParams& gp) {
  Scheduler sched(e, so);
  auto prom = std::make_shared<std::promise<JobOutcome>>();
  auto fut = prom->get_future();
  JobRequest r;
  r.prompt = prompt;
  r.params = gp;
  r.on_done = [prom](JobOutcome& o) { prom->set_value(std::move(o)); };
  if (!sched.submit(std::move(r))) {
    JobOutcome refused;
    refused.error = "refused";
    return refused;
  }
  return fut.get();
}

// SmolLM2 loaded once per test on 2 threads, with the int8 activations every draft test compares
// under (restored afterwards); skipped when the model is absent.
class SmolDraft : public ::testing::Test {
 protected:
  void SetUp() override {
    exact_was_ = ops::exact_activations();
    if (!std::filesystem::exists(model_path(kSmol))) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
    ops::set_exact_activations(false);
    e = Engine::load(model_path(kSmol), {2});
  }
  void TearDown() override { ops::set_exact_activations(exact_was_); }
  std::unique_ptr<Engine> e;

 private:
  bool exact_was_ = false;
};

TEST_F(SmolDraft, SelfDraftGivesPlainGreedyOutputWithEveryGuessAccepted) {
  const auto prompt = poem_prompt(*e);
  const GenerateParams gp = greedy(40);
  Session plain(*e, 512), spec(*e, 512);
  const auto a = plain.generate(prompt, gp);
  SpeculativeOptions so;
  so.proposer = std::make_shared<DraftModelProposer>(*e, model_path(kSmol), 512);
  so.draft_max = 4;
  so.learn_cost = false;  // draft lengths independent of the machine's speed
  const auto b = generate_speculative(spec, prompt, gp, so);
  EXPECT_EQ(b.tokens, a.tokens);
  EXPECT_EQ(b.text, a.text);
  EXPECT_EQ(spec.tokens(), plain.tokens());
  EXPECT_GT(b.n_drafted, 0);
  EXPECT_EQ(b.n_draft_accepted, b.n_drafted) << "a model agrees with itself";
  EXPECT_LE(b.n_decode_passes, (a.n_generated + 4) / 5 + 1);
}

// Sampling: the draft draws its guesses from its own distribution under the generation's sampler
// chain and the target judges them by the rejection rule. A model drafting for itself has q == p
// exactly (batched and one-token passes are bit-identical), so min(1, p/q) = 1 and every guess is
// accepted; that only holds if q went through the same chain (temperature, top-k/p, min-p and the
// penalties over the same history). The same seed gives the same text.
TEST_F(SmolDraft, SelfDraftSampledAcceptsEveryGuessAndIsReproducible) {
  const auto prompt = poem_prompt(*e);
  GenerateParams gp;
  gp.sampling.temperature = 0.8f;
  gp.sampling.repeat_penalty = 1.3f;
  gp.sampling.seed = 42;
  gp.max_tokens = 40;
  SpeculativeOptions so;
  so.proposer = std::make_shared<DraftModelProposer>(*e, model_path(kSmol), 512);
  so.draft_max = 4;  // learn_cost stays on: a sampling draft must ignore the pass times anyway
  Session s1(*e, 512), s2(*e, 512);
  const auto a = generate_speculative(s1, prompt, gp, so);
  const auto b = generate_speculative(s2, prompt, gp, so);
  EXPECT_GT(a.n_generated, 0);
  EXPECT_FALSE(a.text.empty());
  EXPECT_EQ(a.tokens, b.tokens) << "same seed, same tokens";
  EXPECT_EQ(a.n_drafted, b.n_drafted);
  EXPECT_GT(a.n_drafted, 0);
  EXPECT_EQ(a.n_draft_accepted, a.n_drafted) << "q == p: every guess is accepted";
  gp.sampling.seed = 43;
  Session s3(*e, 512);
  EXPECT_NE(generate_speculative(s3, prompt, gp, so).tokens, a.tokens) << "another seed, other text";
}

TEST(DraftModel, OtherVocabularyIsRefused) {
  const std::string qwen = model_path("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
  if (!std::filesystem::exists(model_path(kSmol)) || !std::filesystem::exists(qwen))
    GTEST_SKIP() << "SmolLM2 or Qwen2.5-Coder-0.5B absent (scripts/fetch-models)";
  auto target = Engine::load(qwen, {1});
  try {
    DraftModelProposer p(*target, model_path(kSmol), 64);
    FAIL() << "a draft of another vocabulary was accepted";
  } catch (const InvalidArgument& err) {
    EXPECT_NE(std::string(err.what()).find("vocabulary"), std::string::npos) << err.what();
  }
}

// A bounded catch-up runs at most the limit of the tokens the draft's cache lacks per call and
// guesses nothing until it holds the whole context; then its guesses are the unbounded ones.
TEST_F(SmolDraft, BoundedCatchUpSpreadsTheDraftPrefillAndThenGuessesTheSame) {
  const auto context = e->tokenize_prompt(
      "The lighthouse keeper climbed the stairs every evening, lit the lamp, and wrote in his log what ships he saw");
  ASSERT_GT(context.size(), 16u);
  DraftModelProposer whole(*e, model_path(kSmol), 256), bounded(*e, model_path(kSmol), 256);
  bounded.set_catch_up_limit(8);
  std::vector<int32_t> want, got;
  whole.propose(context, 4, want);
  ASSERT_EQ(want.size(), 4u);
  EXPECT_TRUE(whole.caught_up());
  int calls = 0;
  do {
    bounded.propose(context, 4, got);
    ++calls;
    if (!bounded.caught_up()) EXPECT_TRUE(got.empty());
  } while (!bounded.caught_up() && calls < 100);
  EXPECT_EQ(calls, static_cast<int>((context.size() - 1) / 8) + 1);
  EXPECT_EQ(got, want);
  // Later contexts extend the cached one by a few tokens: no catch-up pass.
  auto longer = context;
  longer.insert(longer.end(), want.begin(), want.begin() + 2);
  whole.propose(longer, 3, want);
  bounded.propose(longer, 3, got);
  EXPECT_TRUE(bounded.caught_up());
  EXPECT_EQ(got, want);
}

// In the scheduler a slot's draft catches up a shared pass's worth at a time (n_batch_shared),
// and the answer is still plain greedy decoding's.
TEST_F(SmolDraft, SchedulerJobWithALongPromptGivesPlainGreedyOutput) {
  std::string text;
  for (int i = 0; i < 6; ++i) text += "Item " + std::to_string(i) + ": the red box is on the shelf by the door. ";
  const auto prompt = e->tokenize_chat(std::vector<chat::Message>{{"user", text + "Repeat the list."}}, true);
  ASSERT_GT(prompt.size(), 40u);
  GenerateParams gp;
  gp.sampling.temperature = 0.f;
  gp.max_tokens = 24;
  Session plain(*e, 512);
  const auto want = plain.generate(prompt, gp);
  SchedulerOptions so;
  so.n_slots = 1;
  so.n_ctx = 512;
  so.n_batch_shared = 16;  // the draft's 16-token catch-up passes
  so.speculation = SpecMode::kDraft;
  so.draft_max = 4;
  so.draft = DraftModelProposer::load_draft(*e, model_path(kSmol));
  so.learn_draft_cost = false;
  const JobOutcome out = run_job(*e, so, prompt, gp);
  ASSERT_TRUE(out.error.empty()) << out.error;
  EXPECT_EQ(out.result.tokens, want.tokens);
  EXPECT_GT(out.result.n_draft_accepted, 0) << "the draft caught up and its guesses were used";
}

// The scheduler's drafter takes the server's speed settings (SchedulerOptions::draft_head_rows,
// draft_min_confidence): at p-min 1 every draft stops after its first guess, so a self-draft
// whose guesses are all accepted runs at most one guess per pass; the answer stays plain
// greedy decoding's. Bad settings are refused at start.
TEST_F(SmolDraft, SchedulerDraftersTakeTheSpeedSettings) {
  const auto prompt = poem_prompt(*e);
  const GenerateParams gp = greedy(32);
  Session plain(*e, 512);
  const auto want = plain.generate(prompt, gp);
  auto draft = DraftModelProposer::load_draft(*e, model_path(kSmol));
  auto serve = [&](float p_min, int32_t head_rows) {
    SchedulerOptions so;
    so.n_slots = 1;
    so.n_ctx = 512;
    so.speculation = SpecMode::kDraft;
    so.draft_max = 6;
    so.draft = draft;
    so.learn_draft_cost = false;
    so.draft_min_confidence = p_min;
    so.draft_head_rows = head_rows;
    JobOutcome out = run_job(*e, so, prompt, gp);
    EXPECT_TRUE(out.error.empty()) << out.error;
    EXPECT_EQ(out.result.tokens, want.tokens) << "p-min " << p_min << ", head rows " << head_rows;
    return out.result;
  };
  const auto free_run = serve(0.f, 0), one_guess = serve(1.f, 0);
  // Each pass: the token and one accepted guess, so at most half the tokens were guesses.
  EXPECT_GT(one_guess.n_drafted, 0);
  EXPECT_LE(one_guess.n_drafted, (one_guess.n_generated + 1) / 2);
  EXPECT_GT(free_run.n_drafted, one_guess.n_drafted) << "without the stop, longer drafts";
  serve(0.5f, 32768);  // the CLI's defaults: a cut head still gives the same answer
  for (auto [p, rows] : {std::pair{-0.1f, 0}, std::pair{1.5f, 0}, std::pair{0.5f, -8}}) {
    SchedulerOptions so;
    so.speculation = SpecMode::kDraft;
    so.draft = draft;
    so.draft_min_confidence = p;
    so.draft_head_rows = rows;
    EXPECT_THROW(Scheduler(*e, so), InvalidArgument) << p << " " << rows;
  }
}

// A session limited to the head's first rows gives, for those token ids, exactly the full
// head's logits (every output row is its own dot product), and -inf for the rest; the prefix is
// rounded down to the repacked groups' 8 rows. Both one row (load_prompt) and several (extend).
TEST(DraftModel, HeadRowsGiveThePrefixOfTheFullLogits) {
  if (!std::filesystem::exists(model_path(kSmol))) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  auto e = Engine::load(model_path(kSmol), {2});
  const int32_t nv = e->config().n_vocab;
  const auto prompt = e->tokenize_prompt("The lighthouse keeper climbed the stairs");
  const std::vector<int32_t> more = {prompt[1], prompt[2], prompt[3]};
  for (int32_t rows : {1003, 4096, 8}) {
    const int32_t kept = rows / 8 * 8;
    Session full(*e, 128), part(*e, 128);
    part.set_head_rows(rows);
    std::vector<float> a(nv * more.size()), b(nv * more.size());
    full.load_prompt(prompt, a.data());
    part.load_prompt(prompt, b.data());
    for (int pass = 0; pass < 2; ++pass) {
      const size_t n_rows = pass == 0 ? 1 : more.size();
      for (size_t r = 0; r < n_rows; ++r)
        for (int32_t t = 0; t < nv; ++t) {
          const float want = t < kept ? a[r * nv + t] : -std::numeric_limits<float>::infinity();
          ASSERT_EQ(b[r * nv + t], want) << "rows " << rows << ", pass " << pass << ", row " << r << ", token " << t;
        }
      full.extend(more, a.data());
      part.extend(more, b.data());
    }
  }
}

// The speed settings of a draft (a smaller head, stopping after an uncertain guess) change which
// guesses are made, never the answer: still plain greedy decoding's.
TEST_F(SmolDraft, SmallerHeadAndConfidenceStopKeepThePlainGreedyOutput) {
  const auto prompt = poem_prompt(*e);
  const GenerateParams gp = greedy(40);
  Session plain(*e, 512);
  const auto want = plain.generate(prompt, gp);
  struct Case {
    int32_t rows;
    float p_min;
  };
  GenerateResult full_draft, certain;
  for (const Case c : {Case{0, 0.f}, Case{2048, 0.f}, Case{0, 1.f}}) {
    auto drafter = std::make_shared<DraftModelProposer>(*e, model_path(kSmol), 512);
    drafter->set_head_rows(c.rows);
    drafter->set_min_confidence(c.p_min);
    SpeculativeOptions so;
    so.proposer = drafter;
    so.draft_max = 4;
    so.learn_cost = false;
    Session spec(*e, 512);
    const auto got = generate_speculative(spec, prompt, gp, so);
    EXPECT_EQ(got.tokens, want.tokens) << "rows " << c.rows << ", p_min " << c.p_min;
    EXPECT_EQ(got.text, want.text);
    EXPECT_GT(got.n_drafted, 0);
    if (c.rows == 0 && c.p_min == 0.f) full_draft = got;
    if (c.rows == 2048) {
      // A model drafting for itself misses only the tokens its head leaves out.
      EXPECT_LT(got.n_draft_accepted, got.n_drafted) << "the answer uses tokens beyond the first 2048";
    }
    if (c.p_min == 1.f) certain = got;
  }
  // Hardly a guess has probability 1: drafts mostly stop after their first guess.
  EXPECT_GT(full_draft.n_drafted, 2 * full_draft.n_decode_passes) << "without the stop, drafts are long";
  EXPECT_LT(2 * certain.n_drafted, 3 * certain.n_decode_passes) << "with it, about one guess per pass";
}

TEST(DraftModel, BadSettingsAreRefused) {
  if (!std::filesystem::exists(model_path(kSmol))) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  auto e = Engine::load(model_path(kSmol), {1});
  DraftModelProposer p(*e, model_path(kSmol), 64);
  EXPECT_THROW(p.set_head_rows(-1), InvalidArgument);
  EXPECT_THROW(p.set_min_confidence(-0.1f), InvalidArgument);
  EXPECT_THROW(p.set_min_confidence(1.5f), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::runtime
