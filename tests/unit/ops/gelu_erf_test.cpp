// gelu_erf against the exact function (std::erf in double) on every ISA: values across the
// range (tails where erf saturates, around 0, large magnitudes), lengths that leave vector
// tails, misaligned buffers, and the values next to the ones written left untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/gelu_erf.h"
#include "ops/ops.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

TEST(GeluErf, MatchesExactEveryIsa) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : {1, 3, 7, 8, 15, 16, 17, 33, 100, 1000})
      for (size_t off : {0, 4, 12}) {
        auto x = random_floats(n, static_cast<uint32_t>(n * 10 + off), -6.f, 6.f);
        if (n > 3) x[0] = 0.f, x[1] = -30.f, x[2] = 30.f, x[3] = 1e-7f;
        Misaligned buf((n + 2) * 4, off);
        float* p = buf.floats() + 1;
        p[-1] = 123.f, p[n] = -77.f;
        std::memcpy(p, x.data(), n * 4);
        gelu_erf(p, n);
        for (int64_t i = 0; i < n; ++i) {
          const double v = x[i], want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          ASSERT_NEAR(p[i], want, 1e-6 * (1 + std::abs(v))) << isa << " n " << n << " x " << v;
        }
        EXPECT_EQ(p[-1], 123.f) << isa;
        EXPECT_EQ(p[n], -77.f) << isa;
      }
  });
}

}  // namespace
}  // namespace edgellm::ops
