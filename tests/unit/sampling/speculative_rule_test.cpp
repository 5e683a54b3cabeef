// The speculative rejection rule (Sampler::verify) keeps the target's distribution exactly: on a
// small vocabulary with fixed p (the target's logits) and q (the proposer's distribution), the
// token emitted after the rule is distributed as p, checked by a chi-square test at fixed seeds
// (200k draws, p-value threshold 1e-6, so a correct rule cannot flake), for a draft distribution
// and for deterministic guesses (a point mass). Wrong rules run through the same harness are
// rejected by a huge margin, so the test has power.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "sampling/sampler.h"
#include "util/error.h"

namespace edgellm::sampling {
namespace {

constexpr int kDraws = 200000;

// Chi-square survival function for an even number of degrees of freedom (closed form:
// e^{-x/2} * sum_{i < df/2} (x/2)^i / i!), so no statistics library is needed.
double chi2_sf_even(double x, int df) {
  EXPECT_EQ(df % 2, 0);
  double term = 1.0, sum = 1.0;
  for (int i = 1; i < df / 2; ++i) sum += term *= (x / 2) / i;
  return std::exp(-x / 2) * sum;
}

// Pearson's statistic of observed counts against expected probabilities (cells with p = 0 must be
// empty: one hit there makes the statistic infinite).
double chi2(const std::vector<int>& counts, const std::vector<double>& p, int n, int* df) {
  double x = 0;
  *df = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      if (counts[i] > 0) return INFINITY;
      continue;
    }
    const double e = p[i] * n;
    x += (counts[i] - e) * (counts[i] - e) / e;
    ++*df;
  }
  return x;
}

std::vector<float> log_of(const std::vector<double>& p) {
  std::vector<float> l;
  for (double v : p) l.push_back(v > 0 ? static_cast<float>(std::log(v)) : -INFINITY);
  return l;
}

SamplingParams untruncated() {
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  sp.seed = 1234;
  return sp;
}

// A rule: (logits, guess, q or null) -> emitted token.
using Rule = std::function<int32_t(float*, int32_t, const std::vector<TokenProb>*)>;

// Draws kDraws guesses (from q, or deterministically cycling through the vocabulary when
// q_is_point_mass) and counts the tokens the rule emits; `accepted` counts emitted == guess.
std::vector<int> run(const Rule& rule, const std::vector<float>& logits, const std::vector<double>& q,
                     bool point_mass, int* accepted) {
  std::vector<TokenProb> qd;
  for (size_t i = 0; i < q.size(); ++i)
    if (q[i] > 0) qd.push_back({static_cast<int32_t>(i), q[i]});
  // Inverse CDF on the top 53 bits of mt19937_64 (not std::discrete_distribution, whose draws
  // differ between standard libraries): the same guesses everywhere.
  std::mt19937_64 guess_rng(99);
  auto from_q = [&](std::mt19937_64& rng) {
    const double u = static_cast<double>(rng() >> 11) / 9007199254740992.0;
    double cum = 0;
    for (size_t i = 0; i < q.size(); ++i)
      if (u < (cum += q[i])) return static_cast<int32_t>(i);
    return static_cast<int32_t>(q.size() - 1);
  };
  std::vector<int> counts(logits.size(), 0);
  std::vector<float> work;
  *accepted = 0;
  for (int n = 0; n < kDraws; ++n) {
    const int32_t guess = point_mass ? n % static_cast<int32_t>(logits.size()) : from_q(guess_rng);
    work = logits;
    const int32_t t = rule(work.data(), guess, point_mass ? nullptr : &qd);
    ++counts.at(t);
    *accepted += t == guess;
  }
  return counts;
}

Rule verify_with(Sampler& s) {
  return [&s](float* l, int32_t g, const std::vector<TokenProb>* q) { return s.verify(l, g, q); };
}

const std::vector<double> kP = {0.30, 0.22, 0.15, 0.12, 0.09, 0.07, 0.05};
const std::vector<double> kQ = {0.08, 0.30, 0.30, 0.04, 0.04, 0.04, 0.20};

TEST(SpeculativeRule, DraftDistributionKeepsTargetDistribution) {
  Sampler s(untruncated(), 7);
  int acc = 0, df = 0;
  const auto counts = run(verify_with(s), log_of(kP), kQ, false, &acc);
  const double x = chi2(counts, kP, kDraws, &df);
  EXPECT_EQ(df, 6);
  EXPECT_GT(chi2_sf_even(x, df), 1e-6) << "chi-square " << x;
  // Acceptance is sum_x min(p, q) (= 1 - total variation distance); binomial sd < 0.0012.
  double expect_acc = 0;
  for (size_t i = 0; i < kP.size(); ++i) expect_acc += std::min(kP[i], kQ[i]);
  EXPECT_NEAR(static_cast<double>(acc) / kDraws, expect_acc, 0.006);
}

TEST(SpeculativeRule, PointMassKeepsTargetDistribution) {
  Sampler s(untruncated(), 7);
  int acc = 0, df = 0;
  const auto counts = run(verify_with(s), log_of(kP), kQ, true, &acc);
  const double x = chi2(counts, kP, kDraws, &df);
  EXPECT_GT(chi2_sf_even(x, df), 1e-6) << "chi-square " << x;
  // Guesses cycle through the vocabulary: accepted with probability p(guess), on average 1/7.
  EXPECT_NEAR(static_cast<double>(acc) / kDraws, 1.0 / 7, 0.006);
}

TEST(SpeculativeRule, TargetIsTheDistributionAfterTheSamplerChain) {
  // Top-k 5, min-p and temperature 0.7 over 8 tokens, with q putting mass on tokens the chain
  // removes (always rejected) and on -inf ones: the emitted tokens follow the truncated,
  // tempered distribution, computed here independently.
  const std::vector<double> raw = {0.25, 0.2, 0.18, 0.12, 0.1, 0.08, 0.07, 0.0};
  SamplingParams sp = untruncated();
  sp.top_k = 5;
  sp.min_p = 0.05f;
  sp.temperature = 0.7f;
  std::vector<double> p(raw.size(), 0.0);
  double z = 0;
  for (int i = 0; i < 5; ++i) z += p[i] = std::pow(raw[i], 1 / 0.7);
  for (double& v : p) v /= z;
  const std::vector<double> q = {0.05, 0.1, 0.3, 0.05, 0.1, 0.2, 0.1, 0.1};
  Sampler s(sp, 8);
  std::vector<float> l = log_of(raw);
  std::vector<TokenProb> dist;
  s.distribution(l.data(), dist);
  ASSERT_EQ(dist.size(), 5u);
  for (const auto& t : dist) EXPECT_NEAR(t.p, p[t.id], 1e-6);
  int acc = 0, df = 0;
  const auto counts = run(verify_with(s), log_of(raw), q, false, &acc);
  const double x = chi2(counts, p, kDraws, &df);
  EXPECT_EQ(df, 4);
  EXPECT_GT(chi2_sf_even(x, df), 1e-6) << "chi-square " << x;
}

TEST(SpeculativeRule, WrongRulesAreDetected) {
  Sampler s(untruncated(), 7);
  int acc = 0, df = 0;
  // Always accepting emits q, not p.
  const Rule always = [](float*, int32_t g, const std::vector<TokenProb>*) { return g; };
  double x = chi2(run(always, log_of(kP), kQ, false, &acc), kP, kDraws, &df);
  EXPECT_GT(x, 10000) << "the harness must tell q from p";
  EXPECT_LT(chi2_sf_even(x, df), 1e-100);
  // The right acceptance test but resampling from p instead of the residual: biased toward p's
  // over-proposed tokens.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u01(0, 1);
  std::discrete_distribution<int32_t> from_p(kP.begin(), kP.end());
  const Rule from_p_on_reject = [&](float*, int32_t g, const std::vector<TokenProb>* q) {
    double qg = 0;
    for (const auto& t : *q)
      if (t.id == g) qg = t.p;
    return u01(rng) * qg < kP[g] ? g : from_p(rng);
  };
  x = chi2(run(from_p_on_reject, log_of(kP), kQ, false, &acc), kP, kDraws, &df);
  EXPECT_GT(x, 1000) << "a wrong residual must be detected";
  EXPECT_LT(chi2_sf_even(x, df), 1e-100);
}

TEST(SpeculativeRule, SeededVerificationIsReproducibleAndGreedyIgnoresTheGuess) {
  auto sequence = [] {
    Sampler s(untruncated(), 7);
    int acc = 0;
    return run(verify_with(s), log_of(kP), kQ, false, &acc);
  };
  EXPECT_EQ(sequence(), sequence());
  SamplingParams g = untruncated();
  g.temperature = 0.f;
  Sampler greedy(g, 7);
  const std::vector<TokenProb> q = {{3, 1.0}};
  for (int guess : {0, 3, 6}) {
    auto l = log_of(kP);
    EXPECT_EQ(greedy.verify(l.data(), guess, &q), 0) << "greedy: the argmax, whatever the guess";
  }
  // The point mass is plain sampling itself: same seed, same tokens.
  Sampler a(untruncated(), 7), b(untruncated(), 7);
  for (int n = 0; n < 100; ++n) {
    auto la = log_of(kP), lb = log_of(kP);
    EXPECT_EQ(a.verify(la.data(), n % 7, nullptr), b.sample(lb.data()));
  }
}

TEST(SpeculativeRule, BadGuessesAreRefused) {
  Sampler s(untruncated(), 7);
  auto l = log_of(kP);
  EXPECT_THROW(s.verify(l.data(), 7, nullptr), InvalidArgument);
  EXPECT_THROW(s.verify(l.data(), -1, nullptr), InvalidArgument);
  const std::vector<TokenProb> bad = {{9, 1.0}};
  EXPECT_THROW(s.verify(l.data(), 0, &bad), InvalidArgument);
  const std::vector<TokenProb> ok = {{0, 1.0}};
  EXPECT_NO_THROW(s.verify(l.data(), 0, &ok)) << "a refused q leaves the sampler usable";
}

}  // namespace
}  // namespace edgellm::sampling
