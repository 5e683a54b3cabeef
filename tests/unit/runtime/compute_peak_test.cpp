// The int8 peak loops do the multiply-adds they count: their integer result is checked against
// the count (with all operands 1 every product adds exactly 1) and against the exact u8 x s8
// dot product of the operand pattern. Speed is never asserted (that is what `edgellm bench`
// prints); only the arithmetic.
#include <gtest/gtest.h>

#include "runtime/compute_peak.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

const Int8Loop kAll[] = {Int8Loop::kPortable, Int8Loop::kAvx2, Int8Loop::kAvx2Vnni, Int8Loop::kAvx512,
                         Int8Loop::kAvx512Vnni};

TEST(Int8Peak, OnesCountEveryMultiplyAdd) {
  const uint8_t a[4] = {1, 1, 1, 1};
  const int8_t b[4] = {1, 1, 1, 1};
  for (Int8Loop loop : kAll) {
    if (!int8_loop_supported(loop)) continue;
    for (int64_t iters : {0, 1, 7, 1000}) {
      const Int8LoopResult r = run_int8_loop(loop, a, b, iters);
      EXPECT_EQ(r.lane_sum, static_cast<int64_t>(r.macs)) << int8_loop_name(loop) << " iters " << iters;
      // At least one 128-bit vector of products per iteration: the loop is not empty.
      EXPECT_GE(r.macs, static_cast<uint64_t>(iters) * 16) << int8_loop_name(loop);
      EXPECT_EQ(r.macs % 64, 0u) << int8_loop_name(loop);
    }
  }
}

TEST(Int8Peak, UnsignedTimesSignedProductsAreExact) {
  // Pairs chosen near the int16 limit of maddubs without reaching it: 3*-5 + 200*2 = 385,
  // 7*127 + 255*-128 = -31751; one 32-bit lane holds 385 - 31751 = -31366 per iteration.
  const uint8_t a[4] = {3, 200, 7, 255};
  const int8_t b[4] = {-5, 2, 127, -128};
  const int64_t dot = 3 * -5 + 200 * 2 + 7 * 127 + 255 * -128;
  ASSERT_EQ(dot, -31366);
  for (Int8Loop loop : kAll) {
    if (!int8_loop_supported(loop)) continue;
    const int64_t iters = 5;  // all accumulators together stay within int32 lanes
    const Int8LoopResult r = run_int8_loop(loop, a, b, iters);
    EXPECT_EQ(r.lane_sum, static_cast<int64_t>(r.macs / 4) * dot) << int8_loop_name(loop);
  }
}

TEST(Int8Peak, PortableAlwaysAndIsaMapping) {
  EXPECT_TRUE(int8_loop_supported(Int8Loop::kPortable));
  EXPECT_EQ(int8_loop_for_isa("scalar"), Int8Loop::kPortable);
  EXPECT_EQ(int8_loop_for_isa("neon"), Int8Loop::kPortable);
  if (int8_loop_supported(Int8Loop::kAvx2)) {
    EXPECT_EQ(int8_loop_for_isa("avx2"), Int8Loop::kAvx2);
  }
  if (int8_loop_supported(Int8Loop::kAvx512)) {
    EXPECT_EQ(int8_loop_for_isa("avx3"), Int8Loop::kAvx512);
  }
  Int8Loop v = Int8Loop::kPortable;
  EXPECT_FALSE(vnni_loop_for_isa("scalar", v));
  EXPECT_EQ(vnni_loop_for_isa("avx2", v), int8_loop_supported(Int8Loop::kAvx2Vnni));
}

TEST(Int8Peak, UnsupportedLoopIsACleanError) {
  const uint8_t a[4] = {1, 1, 1, 1};
  const int8_t b[4] = {1, 1, 1, 1};
  for (Int8Loop loop : kAll) {
    if (!int8_loop_supported(loop)) {
      EXPECT_THROW(run_int8_loop(loop, a, b, 1), InvalidArgument);
    }
  }
}

TEST(Int8Peak, MeasureUsesEveryThread) {
  ops::ThreadPool pool(2);
  const ComputePeak p = measure_int8_peak(pool, Int8Loop::kPortable, 1, 0.002);
  EXPECT_EQ(p.threads, 2);
  EXPECT_EQ(p.loop, Int8Loop::kPortable);
  EXPECT_GT(p.macs_per_second, 0.0);
}

}  // namespace
}  // namespace edgellm::runtime
