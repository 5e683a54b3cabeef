// Prompt lookup and the adaptive draft length, without a model.
#include <gtest/gtest.h>

#include "runtime/proposer.h"
#include "runtime/speculative.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

using V = std::vector<int32_t>;

V propose(const V& ctx, int32_t max, int32_t n_max = 3, int32_t n_min = 1) {
  PromptLookupProposer p(n_max, n_min);
  V out{99};  // must be cleared
  p.propose(ctx, max, out);
  return out;
}

TEST(PromptLookup, ProposesWhatFollowedTheSuffix) {
  EXPECT_EQ(propose({1, 2, 3, 4, 9, 5, 2, 3, 4}, 2), (V{9, 5}));
  EXPECT_EQ(propose({1, 2, 3, 4, 9, 5, 2, 3, 4}, 10), (V{9, 5, 2, 3, 4}));  // up to the end of the context
}

TEST(PromptLookup, PrefersTheLongestSuffix) {
  // [6, 7] occurs once early; [7] alone occurs later followed by 2.
  EXPECT_EQ(propose({5, 6, 7, 1, 9, 7, 2, 8, 6, 7}, 3), (V{1, 9, 7}));
  // With n_max 1 only the single token counts: its latest occurrence wins.
  EXPECT_EQ(propose({5, 6, 7, 1, 9, 7, 2, 8, 6, 7}, 3, 1, 1), (V{2, 8, 6}));
}

TEST(PromptLookup, TakesTheLatestOccurrence) {
  EXPECT_EQ(propose({1, 2, 7, 1, 2, 8, 1, 2}, 2), (V{8, 1}));
  // The match may overlap the suffix (a repeating pattern).
  EXPECT_EQ(propose({4, 4, 4, 4}, 3), (V{4}));
}

TEST(PromptLookup, TheLongestAgreementWinsOverALaterShorterOne) {
  // The end [1, 2, 3, 4, 5] agrees 5 tokens with the passage at the start (followed by 6) and
  // only 3 ([3, 4, 5]) with the later one (followed by 9): the start is the passage copied.
  const V ctx{1, 2, 3, 4, 5, 6, 7, 0, 3, 4, 5, 9, 8, 1, 2, 3, 4, 5};
  PromptLookupProposer p;
  V out;
  p.propose(ctx, 2, out);
  EXPECT_EQ(out, (V{6, 7}));
  EXPECT_EQ(p.match_length(), 5);
  // Agreement counted up to n_max only: beyond it the latest occurrence wins, as before.
  EXPECT_EQ(propose(ctx, 2, 3), (V{9, 8}));
}

TEST(PromptLookup, NothingWithoutAMatch) {
  EXPECT_TRUE(propose({1, 2, 3, 4}, 4).empty());
  EXPECT_TRUE(propose({1, 2, 3, 1}, 0).empty());
  EXPECT_TRUE(propose({1}, 4).empty());
  EXPECT_TRUE(propose({}, 4).empty());
  EXPECT_TRUE(propose({1, 2, 3, 2}, 4, 3, 2).empty()) << "n_min 2: a one-token match does not count";
}

TEST(PromptLookup, MeasuresHowFarTheOccurrenceMatches) {
  PromptLookupProposer p;
  V out;
  // Suffix [3, 4, 5] matches; the occurrence agrees two more tokens back ([1, 2]), then the start.
  p.propose({1, 2, 3, 4, 5, 9, 8, 1, 2, 3, 4, 5}, 4, out);
  EXPECT_EQ(out, (V{9, 8, 1, 2}));
  EXPECT_EQ(p.match_length(), 5);
  // Only the suffix itself: the tokens before it differ.
  p.propose({1, 2, 3, 4, 9, 5, 2, 3, 4}, 2, out);
  EXPECT_EQ(p.match_length(), 3);
  p.propose({1, 2, 3, 4}, 2, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p.match_length(), 0) << "no guess: no match";
  // A long repeated passage: the measure stops at the cap.
  V ctx;
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 50; ++i) ctx.push_back(100 + i);
  ctx.push_back(100);
  p.propose(ctx, 3, out);
  EXPECT_EQ(out, (V{101, 102, 103}));
  EXPECT_EQ(p.match_length(), PromptLookupProposer::kMatchLengthCap);
}

TEST(PromptLookup, ContinuesPastOneSubstitutedToken) {
  // The passage [9..17] is being copied with 13 replaced by 99 (a rename): no earlier 99, but
  // the four tokens before it agree with the passage, so the copy resumes after 13.
  PromptLookupProposer p;
  V out;
  p.propose({5, 9, 10, 11, 12, 13, 14, 15, 16, 17, 6, 9, 10, 11, 12, 99}, 3, out);
  EXPECT_EQ(out, (V{14, 15, 16}));
  EXPECT_EQ(p.match_length(), 4 - PromptLookupProposer::kSubstitutionPenalty) << "9 ... 12 agree, less the penalty";
  // Further on, the substitution lies inside the agreement: it reaches back past it.
  p.propose({5, 9, 10, 11, 12, 13, 14, 15, 16, 17, 6, 9, 10, 11, 12, 99, 14, 15}, 2, out);
  EXPECT_EQ(out, (V{16, 17}));
  EXPECT_EQ(p.match_length(), 6 - PromptLookupProposer::kSubstitutionPenalty);
  // Too little agreement beyond the substituted token: not a copy.
  EXPECT_TRUE(propose({5, 11, 12, 13, 14, 6, 7, 11, 12, 99}, 2, 32).empty());
  // An exact match at least as long is preferred (here [12, 99] earlier, followed by 3).
  PromptLookupProposer q;
  q.propose({12, 99, 3, 10, 11, 12, 13, 14, 6, 10, 11, 12, 99}, 2, out);
  EXPECT_EQ(out, (V{3, 10}));
  EXPECT_EQ(q.match_length(), 2);
}

TEST(PromptLookup, LearnsRenamesAndForgetsThoseTheTargetContradicts) {
  // The source has 13 three times; the answer copies it writing 99 for the first.
  const V source{9, 10, 11, 12, 13, 14, 15, 16, 20, 21, 13, 22, 23, 13, 24, 5};
  auto with = [&](const V& tail) {
    V c = source;
    c.insert(c.end(), tail.begin(), tail.end());
    return c;
  };
  PromptLookupProposer p;
  p.begin({});
  V out;
  // 12 ... 9 before the substitution and 14, 15, 16 after it agree: a confirmed rename 13 -> 99.
  p.propose(with({9, 10, 11, 12, 99, 14, 15, 16}), 2, out);
  EXPECT_EQ(out, (V{20, 21}));
  // The next copy of 13 is guessed renamed, and the rename lets the agreement reach back past it.
  p.propose(with({9, 10, 11, 12, 99, 14, 15, 16, 20, 21}), 3, out);
  EXPECT_EQ(out, (V{99, 22, 23}));
  EXPECT_EQ(p.match_length(), 10);
  // The target kept 13 there: the rename is dropped for good, though the first one stays in view.
  p.propose(with({9, 10, 11, 12, 99, 14, 15, 16, 20, 21, 13}), 4, out);
  EXPECT_EQ(out, (V{22, 23, 13, 24}));
  // A new generation starts without renames.
  p.begin({});
  p.propose(with({9, 10, 11, 12, 99, 14, 15, 16}), 2, out);
  p.propose(with({9, 10, 11, 12, 99, 14, 15, 16, 20, 21}), 1, out);
  EXPECT_EQ(out, (V{99}));
}

TEST(PromptLookup, RejectsBadSizes) {
  EXPECT_THROW(PromptLookupProposer(3, 0), InvalidArgument);
  EXPECT_THROW(PromptLookupProposer(1, 2), InvalidArgument);
}

SpeculativeOptions opts(int32_t max, int32_t probe) {
  SpeculativeOptions o;
  o.draft_max = max;
  o.probe_interval = probe;
  return o;
}

TEST(DraftLength, GrowsWithAcceptanceAndStopsWhenDraftsAreRejected) {
  DraftLength d(opts(8, 4));
  EXPECT_EQ(d.next(), 0) << "the first pass times a one-token pass";
  d.record_pass(1, 0.1);
  EXPECT_GT(d.next(), 0) << "then drafting starts";
  for (int i = 0; i < 20; ++i) d.record(8, 8);
  EXPECT_EQ(d.next(), 8) << "everything accepted: the longest draft";
  for (int i = 0; i < 40; ++i) d.record(4, 0);
  EXPECT_LT(d.acceptance(), 0.05f);
  EXPECT_EQ(d.next(), 0) << "nothing accepted: plain decoding";
  // Resting: three more plain passes, then a short probe.
  EXPECT_EQ(d.next(), 0);
  EXPECT_EQ(d.next(), 0);
  EXPECT_EQ(d.next(), 0);
  EXPECT_EQ(d.next(), 2) << "probe after probe_interval passes";
  // A failed probe rests again, twice as long; successful ones bring drafting back.
  d.record(2, 0);
  EXPECT_EQ(d.next(), 0);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(d.next(), 0) << "rest " << i;
  EXPECT_EQ(d.next(), 2);
  for (int i = 0; i < 10; ++i) d.record(2, 2);
  EXPECT_GT(d.next(), 2);
}

TEST(DraftLength, FailedProbesDoubleTheRestUpToItsCap) {
  SpeculativeOptions o = opts(8, 4);
  o.learn_cost = false;
  DraftLength d(o);
  d.next();
  for (int i = 0; i < 40; ++i) d.record(4, 0);
  // Passes between probes: 4, then 8, 16, 32, and 32 again (kMaxRestFactor 8).
  for (int32_t expect : {4, 8, 16, 32, 32}) {
    int32_t rested = 0;
    while (d.next() == 0) ++rested;
    EXPECT_EQ(rested, expect);
    d.record(2, 0);  // the probe fails
  }
  // Drafting that pays again resets the rest to probe_interval.
  int32_t rested = 1;
  while (d.next() == 0) ++rested;
  for (int i = 0; i < 40; ++i) d.record(2, 2);
  EXPECT_GT(d.next(), 0);
  for (int i = 0; i < 80; ++i) d.record(4, 0);
  EXPECT_EQ(d.next(), 0);
  rested = 1;
  while (d.next() == 0) ++rested;
  EXPECT_EQ(rested, 4);
}

TEST(DraftLength, LearnsTheCostOfAnExtraTokenFromPassTimes) {
  DraftLength cheap(opts(8, 4)), dear(opts(8, 4));
  for (DraftLength* d : {&cheap, &dear}) {
    d->next();
    d->record_pass(1, 1.0);
    for (int i = 0; i < 20; ++i) d->record(4, i % 2 ? 4 : 0);  // the first guess right half the time
  }
  for (int i = 0; i < 40; ++i) {
    cheap.record_pass(9, 1.0 + 8 * 0.02);
    dear.record_pass(9, 1.0 + 8 * 0.8);
  }
  EXPECT_NEAR(cheap.cost(), 0.02f, 0.01f);
  EXPECT_NEAR(dear.cost(), 0.8f, 0.05f);
  const int32_t k_cheap = cheap.next(), k_dear = dear.next();
  EXPECT_GT(k_cheap, 1);
  EXPECT_EQ(k_dear, 0) << "a first guess right half the time does not pay for guesses costing 0.8 of a pass";
  // Passes without a timed base, and nonsense times, teach nothing.
  DraftLength fresh(opts(8, 4));
  fresh.record_pass(9, 5.0);
  fresh.record_pass(0, 1.0);
  fresh.record_pass(1, -1.0);
  EXPECT_FLOAT_EQ(fresh.cost(), 0.15f);
}

TEST(DraftLength, FixedCostDraftsFromTheFirstPassAndIgnoresTimes) {
  SpeculativeOptions o = opts(8, 4);
  o.learn_cost = false;
  DraftLength d(o);
  EXPECT_GT(d.next(), 0);
  d.record_pass(1, 1.0);
  d.record_pass(9, 100.0);
  EXPECT_FLOAT_EQ(d.cost(), 0.15f);
}

TEST(DraftLength, MatchLengthClasses) {
  EXPECT_EQ(DraftLength::class_of(0), 0);
  EXPECT_EQ(DraftLength::class_of(1), 1);
  EXPECT_EQ(DraftLength::class_of(2), 2);
  EXPECT_EQ(DraftLength::class_of(3), 3);
  EXPECT_EQ(DraftLength::class_of(4), 3);
  EXPECT_EQ(DraftLength::class_of(5), 4);
  EXPECT_EQ(DraftLength::class_of(8), 4);
  EXPECT_EQ(DraftLength::class_of(16), 5);
  EXPECT_EQ(DraftLength::class_of(17), 6);
  EXPECT_EQ(DraftLength::class_of(1000), 6);
}

TEST(DraftLength, LongMatchesDraftLongAndEachClassLearnsApart) {
  SpeculativeOptions o = opts(8, 4);
  o.learn_cost = false;
  DraftLength d(o);
  EXPECT_EQ(d.next(32), 8) << "a long copied passage: the longest draft from the start";
  const int32_t short_k = d.next(1);
  EXPECT_GT(short_k, 0);
  EXPECT_LT(short_k, 4) << "one matching token: a short draft";
  EXPECT_GT(d.acceptance(32), d.acceptance(4));
  EXPECT_GT(d.acceptance(4), d.acceptance(1));
  // Single-token matches keep failing: their class stops drafting, the long class does not.
  d.next(1);
  for (int i = 0; i < 40; ++i) d.record(2, 0);
  EXPECT_LT(d.acceptance(1), 0.05f);
  EXPECT_EQ(d.next(1), 0);
  EXPECT_EQ(d.next(20), 8);
  EXPECT_GT(d.acceptance(20), 0.9f);
  // Misses in the long class lower it alone.
  const float before = d.acceptance(1);
  d.next(30);
  for (int i = 0; i < 40; ++i) d.record(8, 0);
  EXPECT_LT(d.acceptance(30), 0.4f);
  EXPECT_FLOAT_EQ(d.acceptance(1), before);
}

// Counts its calls; guesses `max` copies of 7.
struct CountingProposer : Proposer {
  bool is_cheap = false;
  int calls = 0;
  int32_t asked = 0;
  void propose(const std::vector<int32_t>&, int32_t max, std::vector<int32_t>& out) override {
    ++calls;
    asked = max;
    out.assign(static_cast<size_t>(max), 7);
  }
  bool cheap() const override { return is_cheap; }
  int32_t match_length() const override { return is_cheap ? 1 : 0; }
};

TEST(ChooseDraft, CheapProposersGuessFirstOthersOnlyWhenADraftIsWanted) {
  SpeculativeOptions o = opts(8, 4);
  o.learn_cost = false;
  const V ctx{1, 2, 3};
  int contexts = 0;
  auto context = [&]() -> const V& {
    ++contexts;
    return ctx;
  };
  V draft;
  // A model-like proposer: asked for exactly the chosen length, never while resting.
  CountingProposer model;
  DraftLength d(o);
  choose_draft(model, d, 100, context, draft);
  EXPECT_EQ(model.asked, static_cast<int32_t>(draft.size()));
  EXPECT_GT(draft.size(), 0u);
  for (int i = 0; i < 40; ++i) d.record(4, 0);  // drafts never accepted: the length drops to 0
  const int calls = model.calls, built = contexts;
  choose_draft(model, d, 100, context, draft);
  EXPECT_TRUE(draft.empty());
  EXPECT_EQ(model.calls, calls) << "no draft wanted: the proposer is not run";
  EXPECT_EQ(contexts, built) << "... and the context is not built";
  // A cheap proposer: asked for up to the room (capped by draft_max), then cut to the length of
  // its match class (one token: a short draft).
  CountingProposer lookup;
  lookup.is_cheap = true;
  DraftLength d2(o);
  choose_draft(lookup, d2, 100, context, draft);
  EXPECT_EQ(lookup.asked, 8);
  EXPECT_EQ(static_cast<int32_t>(draft.size()), d2.next(1));
  choose_draft(lookup, d2, 3, context, draft);
  EXPECT_EQ(lookup.asked, 3) << "never more than the room";
  EXPECT_LE(draft.size(), 3u);
  choose_draft(lookup, d2, 0, context, draft);
  EXPECT_TRUE(draft.empty());
}

TEST(PassCosts, TableAndItsExtension) {
  PassCosts c;
  EXPECT_FALSE(c.known());
  EXPECT_DOUBLE_EQ(c.pass(5), 1.0) << "unknown: every pass costs one";
  c.verify = {1.f, 1.1f, 1.3f};
  EXPECT_TRUE(c.known());
  EXPECT_DOUBLE_EQ(c.pass(1), 1.0);
  EXPECT_NEAR(c.pass(3), 1.3, 1e-6);
  EXPECT_NEAR(c.pass(5), 1.7, 1e-6) << "past the table: its last step per token";
}

SpeculativeOptions measured(int32_t max, std::vector<float> verify, float guess = 0.f) {
  SpeculativeOptions o = opts(max, 4);
  o.costs.verify = std::move(verify);
  o.costs.guess = guess;
  return o;
}

TEST(DraftLength, MeasuredCostsPriceTheDraftAndPassTimesTeachNothing) {
  // Acceptance 0.6 at every position (class 0's start). Nearly free passes: the longest draft.
  DraftLength flat(measured(8, {1.f, 1.001f, 1.002f, 1.003f, 1.004f, 1.005f, 1.006f, 1.007f, 1.008f}));
  EXPECT_EQ(flat.next(), 8) << "measured costs: no plain pass to time first";
  // Today's 1.5B costs (bench -V): 0.6 pays for 2 guesses (1.96 tokens / 1.31), not 3 (2.18 / 1.49).
  const std::vector<float> zen4 = {1.f, 1.13f, 1.31f, 1.49f, 1.79f, 2.0f, 2.25f, 2.51f, 2.7f};
  DraftLength today(measured(8, zen4));
  EXPECT_EQ(today.next(), 2);
  // A k-token pass costing k one-token passes: no draft below certainty pays.
  DraftLength linear(measured(8, {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f}));
  EXPECT_EQ(linear.next(), 0);
  // A guess costing 0.5 of a pass (a draft model): 1 guess yields 1.6 for 1.63, not worth it.
  DraftLength dear(measured(8, zen4, 0.5f));
  EXPECT_EQ(dear.next(), 0);
  // Pass times change nothing, however odd.
  for (int i = 0; i < 50; ++i) today.record_pass(1, 1.0), today.record_pass(3, 100.0);
  EXPECT_EQ(today.next(), 2);
}

TEST(DraftLength, AcceptanceIsEstimatedPerPositionAndUnjudgedPositionsInherit) {
  SpeculativeOptions o = measured(8, {1.f, 1.13f, 1.31f, 1.49f, 1.79f, 2.0f, 2.25f, 2.51f, 2.7f});
  DraftLength d(o);
  d.next();
  // The first guess is right half the time, and when it is the next three are too (a passage
  // that is either being copied or not).
  for (int i = 0; i < 60; ++i) d.record(4, i % 2 ? 4 : 0);
  EXPECT_NEAR(d.acceptance_at(0), 0.5f, 0.1f);
  EXPECT_GT(d.acceptance_at(1), 0.95f);
  EXPECT_GT(d.acceptance_at(3), 0.95f);
  EXPECT_FLOAT_EQ(d.acceptance_at(6), d.acceptance_at(3)) << "never judged: the deepest judged position's";
  // One rate of 0.6 per guess would draft 2; after a right first guess the rest are nearly sure:
  // 1 + 0.5 * (1 + ~1 + ...) pays for a long draft.
  EXPECT_GE(d.next(), 6);
}

TEST(DraftLength, ZeroMaxMeansPlainDecodingAndBadOptionsAreRefused) {
  DraftLength d(opts(0, 4));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(d.next(), 0);
  EXPECT_THROW(DraftLength(opts(-1, 4)), InvalidArgument);
  EXPECT_THROW(DraftLength(opts(4, 0)), InvalidArgument);
  EXPECT_THROW(DraftLength(measured(4, {1.f, 1.1f}, -1.f)), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::runtime
