// Sampler tests against an independent reference of the truncated distribution (computed here
// with a full sort in double precision) and exact checks of penalties and greedy choice.
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "util/error.h"

using edgellm::sampling::Sampler;
using edgellm::sampling::SamplingParams;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

SamplingParams plain(float temp) {
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

// Reference truncated distribution: ids in canonical order (logit desc, id asc) with their
// probabilities after top-k, top-p, min-p (all at temperature 1) and temperature.
std::vector<std::pair<int, double>> reference_dist(const std::vector<float>& logits, const SamplingParams& p) {
  std::vector<int> ids;
  for (int i = 0; i < static_cast<int>(logits.size()); ++i)
    if (logits[i] != kNegInf) ids.push_back(i);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < ids.size()) ids.resize(p.top_k);
  const double mx = logits[ids[0]];
  double z = 0;
  for (int id : ids) z += std::exp(logits[id] - mx);
  size_t n = ids.size();
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += std::exp(logits[ids[i]] - mx) / z;
      if (cum >= p.top_p) { n = i + 1; break; }
    }
  }
  if (p.min_p > 0.0f) {
    size_t m = 0;
    while (m < n && std::exp(logits[ids[m]] - mx) >= p.min_p) ++m;
    n = std::max<size_t>(1, m);
  }
  ids.resize(n);
  std::vector<std::pair<int, double>> out;
  double t = 0;
  for (int id : ids) t += std::exp((logits[id] - mx) / p.temperature);
  for (int id : ids) out.emplace_back(id, std::exp((logits[id] - mx) / p.temperature) / t);
  return out;
}

// The documented draw: u from the top 53 bits of mt19937_64, inverse CDF over canonical order.
int reference_draw(std::mt19937_64& rng, const std::vector<std::pair<int, double>>& dist) {
  const double u = static_cast<double>(rng() >> 11) / 9007199254740992.0;
  double cum = 0;
  for (const auto& [id, pr] : dist) {
    cum += pr;
    if (u < cum) return id;
  }
  return dist.back().first;
}

void expect_frequencies(const std::vector<float>& logits, const SamplingParams& p, int draws) {
  Sampler s(p, static_cast<int32_t>(logits.size()));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> l = logits;
    ++counts[s.sample(l.data())];
  }
  const auto ref = reference_dist(logits, p);
  std::vector<double> expected(logits.size(), 0.0);
  for (const auto& [id, pr] : ref) expected[id] = pr;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should be truncated away";
      continue;
    }
    const double f = static_cast<double>(counts[i]) / draws;
    const double sigma = std::sqrt(expected[i] * (1 - expected[i]) / draws);
    EXPECT_NEAR(f, expected[i], 5 * sigma + 1e-9) << "token " << i;
  }
}

const std::vector<float> kLogits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.0f, 0.5f, 2.5f, -3.0f, 1.5f};

}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(plain(0.0f), 10);
  std::vector<float> l = kLogits;
  EXPECT_EQ(s.sample(l.data()), 1);
  std::vector<float> t = {0.0f, 5.0f, 1.0f, 5.0f};
  Sampler s4(plain(-1.0f), 4);
  EXPECT_EQ(s4.sample(t.data()), 1);
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p, 4);
  for (int t : {0, 1, 0}) s.accept(t);
  std::vector<float> l = {2.0f, -2.0f, 1.5f, 0.5f};
  const int got = s.sample(l.data());
  EXPECT_FLOAT_EQ(l[0], 1.0f);   // counted twice, penalised once (llama.cpp)
  EXPECT_FLOAT_EQ(l[1], -4.0f);
  EXPECT_FLOAT_EQ(l[2], 1.5f);
  EXPECT_FLOAT_EQ(l[3], 0.5f);
  EXPECT_EQ(got, 2);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p, 4);
  for (int t : {3, 3, 3, 1}) s.accept(t);
  std::vector<float> l = {0.0f, 1.0f, 2.0f, 3.0f};
  s.sample(l.data());
  EXPECT_FLOAT_EQ(l[0], 0.0f);
  EXPECT_FLOAT_EQ(l[1], 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[2], 2.0f);
  EXPECT_FLOAT_EQ(l[3], 3.0f - 0.5f - 0.75f);
}

TEST(Sampler, PenaltyWindowIsLastN) {
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 1.0f;
  p.repeat_last_n = 2;
  Sampler s(p, 3);
  for (int t : {0, 0, 0, 1, 2}) s.accept(t);
  std::vector<float> l = {1.0f, 1.0f, 1.0f};
  s.sample(l.data());
  EXPECT_FLOAT_EQ(l[0], 1.0f);  // outside the window
  EXPECT_FLOAT_EQ(l[1], 0.0f);
  EXPECT_FLOAT_EQ(l[2], 0.0f);

  p.repeat_last_n = 0;  // off
  Sampler off(p, 3);
  off.accept(0);
  std::vector<float> m = {1.0f, 1.0f, 1.0f};
  off.sample(m.data());
  EXPECT_FLOAT_EQ(m[0], 1.0f);

  p.repeat_last_n = -1;  // whole history
  Sampler all(p, 3);
  for (int i = 0; i < 100; ++i) all.accept(0);
  std::vector<float> a = {1.0f, 1.0f, 1.0f};
  all.sample(a.data());
  EXPECT_FLOAT_EQ(a[0], -99.0f);
}

TEST(Sampler, TemperatureOnlyMatchesSoftmax) { expect_frequencies(kLogits, plain(0.7f), 200000); }

TEST(Sampler, TopKMatchesReference) {
  SamplingParams p = plain(1.0f);
  p.top_k = 3;  // ids 1, 2, 7 (2 and 7 tie; both kept)
  expect_frequencies(kLogits, p, 200000);
  p.top_k = 2;  // tie at the boundary: lower id (2) wins
  expect_frequencies(kLogits, p, 100000);
}

TEST(Sampler, TopPMatchesReference) {
  SamplingParams p = plain(1.3f);
  p.top_p = 0.6f;
  expect_frequencies(kLogits, p, 200000);
}

TEST(Sampler, MinPMatchesReference) {
  SamplingParams p = plain(0.9f);
  p.min_p = 0.2f;
  expect_frequencies(kLogits, p, 200000);
}

TEST(Sampler, CombinedChainMatchesReference) {
  SamplingParams p = plain(0.8f);
  p.top_k = 6;
  p.top_p = 0.9f;
  p.min_p = 0.1f;
  expect_frequencies(kLogits, p, 200000);
}

// distribution() (what speculative verification judges guesses by) is the distribution the draw
// uses: equal to the reference for every chain, penalties included, and greedy is a point mass.
TEST(Sampler, DistributionEqualsReferenceForEveryChain) {
  std::vector<SamplingParams> chains(6, plain(0.8f));
  chains[1].top_k = 3;
  chains[2].top_p = 0.6f, chains[2].temperature = 1.3f;
  chains[3].min_p = 0.2f;
  chains[4].top_k = 6, chains[4].top_p = 0.9f, chains[4].min_p = 0.1f;
  chains[5].repeat_penalty = 1.5f, chains[5].top_k = 5;
  for (size_t c = 0; c < chains.size(); ++c) {
    Sampler s(chains[c], 10);
    std::vector<float> penalised = kLogits;
    if (chains[c].repeat_penalty != 1.0f) {
      for (int t : {1, 7, 3}) s.accept(t);
      for (int t : {1, 7, 3}) penalised[t] = penalised[t] > 0 ? penalised[t] / 1.5f : penalised[t] * 1.5f;
    }
    std::vector<float> l = kLogits;
    std::vector<edgellm::sampling::TokenProb> got;
    s.distribution(l.data(), got);
    const auto ref = reference_dist(penalised, chains[c]);
    ASSERT_EQ(got.size(), ref.size()) << "chain " << c;
    std::map<int, double> by_id;
    for (const auto& t : got) by_id[t.id] = t.p;
    for (const auto& [id, pr] : ref) EXPECT_NEAR(by_id[id], pr, 1e-9) << "chain " << c << " token " << id;
  }
  Sampler g(plain(0.0f), 10);
  std::vector<float> l = kLogits;
  std::vector<edgellm::sampling::TokenProb> got;
  g.distribution(l.data(), got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1);
  EXPECT_EQ(got[0].p, 1.0);
}

TEST(Sampler, DrawMatchesDocumentedAlgorithmExactly) {
  // Large random vocabulary, top-k off so the lazy partial sorts are exercised.
  std::mt19937_64 gen(123);
  std::vector<float> logits(262144);
  for (auto& x : logits) x = static_cast<float>(static_cast<double>(gen() >> 11) / 9007199254740992.0 * 20.0 - 10.0);
  for (const auto& cfg : std::vector<std::tuple<int, float, float, float>>{
           {0, 0.95f, 0.0f, 0.8f}, {40, 0.95f, 0.05f, 0.8f}, {0, 1.0f, 0.05f, 1.5f}, {1000, 0.5f, 0.0f, 1.0f},
           {0, 0.99999f, 0.0f, 1.0f}, {0, 0.3f, 0.2f, 0.5f},
           {0, 1.0f, 0.0f, 1.0f}, {0, 1.0f, 0.0f, 0.7f}}) {  // last two: no truncation (OpenAI defaults)
    SamplingParams p = plain(std::get<3>(cfg));
    p.top_k = std::get<0>(cfg);
    p.top_p = std::get<1>(cfg);
    p.min_p = std::get<2>(cfg);
    p.seed = 77;
    Sampler s(p, static_cast<int32_t>(logits.size()));
    std::mt19937_64 rng(77);
    const auto dist = reference_dist(logits, p);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = logits;
      ASSERT_EQ(s.sample(l.data()), reference_draw(rng, dist)) << "draw " << i << " top_k " << p.top_k;
    }
  }
}

// Without truncation the draw first walks only tokens within e^-12 of the best weight and adds
// the rest when the draw reaches past them. Here ~43% of the mass sits in 199,999 tokens at
// -12.5 (below that cut, above the e^-40 one) and a few at -41 (never candidates), so both
// stages and the canonical order across them are exercised against the reference draw.
TEST(Sampler, UntruncatedDrawReachingTheTailMatchesReference) {
  std::vector<float> logits(200000, -12.5f);
  logits[123] = 0.0f;
  for (int i = 0; i < 100; ++i) logits[1000 + 37 * i] = -41.0f;
  logits[5] = kNegInf;
  SamplingParams p = plain(1.0f);
  p.seed = 9;
  Sampler s(p, static_cast<int32_t>(logits.size()));
  std::mt19937_64 rng(9);
  const auto dist = reference_dist(logits, p);
  int tail = 0;
  for (int i = 0; i < 60; ++i) {
    std::vector<float> l = logits;
    const int got = s.sample(l.data());
    ASSERT_EQ(got, reference_draw(rng, dist)) << "draw " << i;
    tail += got != 123;
  }
  EXPECT_GT(tail, 10);  // the second stage was reached
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedsDiffer) {
  SamplingParams p = plain(1.0f);
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, 10);
    std::vector<int> out;
    for (int i = 0; i < 64; ++i) {
      std::vector<float> l = kLogits;
      out.push_back(s.sample(l.data()));
    }
    return out;
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
  // reset() restarts the sequence.
  p.seed = 5;
  Sampler s(p, 10);
  std::vector<float> l = kLogits;
  const int first = s.sample(l.data());
  s.reset();
  l = kLogits;
  EXPECT_EQ(s.sample(l.data()), first);
}

TEST(Sampler, AllNegInfButOne) {
  std::vector<float> base(50, kNegInf);
  base[17] = -3.0f;
  for (float temp : {0.0f, 1.0f}) {
    SamplingParams p = plain(temp);
    p.top_k = 40;
    p.top_p = 0.5f;
    p.min_p = 0.9f;
    Sampler s(p, 50);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = base;
      EXPECT_EQ(s.sample(l.data()), 17);
      EXPECT_NEAR(s.last_logprob(), 0.0f, 1e-6);
      EXPECT_NEAR(s.last_entropy(), 0.0f, 1e-6);
    }
  }
}

TEST(Sampler, RejectsInvalidLogitsAndArguments) {
  Sampler s(plain(1.0f), 4);
  std::vector<float> nan = {0.0f, std::nanf(""), 1.0f, 2.0f};
  EXPECT_THROW(s.sample(nan.data()), edgellm::Error);
  std::vector<float> pinf = {0.0f, std::numeric_limits<float>::infinity(), 1.0f, 2.0f};
  EXPECT_THROW(s.sample(pinf.data()), edgellm::Error);
  std::vector<float> all = {kNegInf, kNegInf, kNegInf, kNegInf};
  EXPECT_THROW(s.sample(all.data()), edgellm::Error);
  EXPECT_THROW(s.accept(4), edgellm::InvalidArgument);
  EXPECT_THROW(s.accept(-1), edgellm::InvalidArgument);
  EXPECT_THROW(Sampler(plain(1.0f), 0), edgellm::InvalidArgument);
  SamplingParams bad = plain(1.0f);
  bad.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(bad, 4), edgellm::InvalidArgument);
}

TEST(Sampler, VocabOfOne) {
  for (float temp : {0.0f, 0.8f}) {
    SamplingParams p;
    p.temperature = temp;
    Sampler s(p, 1);
    float l = 4.2f;
    EXPECT_EQ(s.sample(&l), 0);
    EXPECT_NEAR(s.last_logprob(), 0.0f, 1e-7);
  }
}

TEST(Sampler, TopKLargerThanVocabIsNoTruncation) {
  SamplingParams a = plain(1.0f), b = plain(1.0f);
  b.top_k = 1000;
  Sampler sa(a, 10), sb(b, 10);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> la = kLogits, lb = kLogits;
    ASSERT_EQ(sa.sample(la.data()), sb.sample(lb.data()));
  }
}

TEST(Sampler, LogprobAndEntropyUseRawLogits) {
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 3.0f;
  p.presence_penalty = 1.0f;
  Sampler s(p, 10);
  s.accept(1);  // penalises the raw argmax so greedy picks id 2 instead
  std::vector<float> l = kLogits;
  const int got = s.sample(l.data());
  ASSERT_EQ(got, 2);
  double mx = *std::max_element(kLogits.begin(), kLogits.end()), z = 0;
  for (float x : kLogits) z += std::exp(x - mx);
  double h = 0;
  for (float x : kLogits) {
    const double pr = std::exp(x - mx) / z;
    h -= pr * std::log(pr);
  }
  EXPECT_NEAR(s.last_logprob(), kLogits[2] - mx - std::log(z), 1e-5);
  EXPECT_NEAR(s.last_entropy(), h, 1e-5);
}
