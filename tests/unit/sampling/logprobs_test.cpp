#include "sampling/logprobs.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "util/error.h"

namespace edgellm::sampling {
namespace {

TEST(PositionLogprobs, LogSoftmaxOfTheTokenAndTopInOrder) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  double z = 0;
  for (float x : logits) z += std::exp(static_cast<double>(x));
  const auto p = position_logprobs(logits.data(), 5, 4, 3);
  EXPECT_EQ(p.id, 4);
  EXPECT_NEAR(p.logprob, 0.5 - std::log(z), 1e-6);
  ASSERT_EQ(p.top.size(), 3u);
  EXPECT_EQ(p.top[0].id, 1);  // tie with 3: the lower id first
  EXPECT_EQ(p.top[1].id, 3);
  EXPECT_EQ(p.top[2].id, 0);
  EXPECT_NEAR(p.top[2].logprob, 1.0 - std::log(z), 1e-6);
}

TEST(PositionLogprobs, TopIsCappedAndMaskedTokensAreMinusInfinity) {
  std::vector<float> logits(30, 0.0f);
  logits[7] = -std::numeric_limits<float>::infinity();
  const auto p = position_logprobs(logits.data(), 30, 7, 100);
  EXPECT_EQ(p.top.size(), static_cast<size_t>(kMaxTopLogprobs));
  EXPECT_TRUE(std::isinf(p.logprob) && p.logprob < 0);
  EXPECT_NEAR(p.top[0].logprob, -std::log(29.0), 1e-6);
  EXPECT_TRUE(position_logprobs(logits.data(), 30, -1, 0).top.empty());
}

TEST(PositionLogprobs, BadInputIsAnError) {
  std::vector<float> logits = {0.0f, std::nanf("")};
  EXPECT_THROW(position_logprobs(logits.data(), 2, 0, 1), Error);
  logits[1] = 1.0f;
  EXPECT_THROW(position_logprobs(logits.data(), 2, 2, 1), InvalidArgument);
  EXPECT_THROW(position_logprobs(nullptr, 2, 0, 1), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::sampling
