// The activation quantizers (Q8_A per 32, Q8_KA per 256 with per-32 scales) against a scalar
// reference written from the block definitions in quant_blocks.h: every field bitwise, on
// every ISA, several lengths, misaligned inputs, and data with zeros, outliers and exact
// rounding ties (x/d = k + 0.5 rounds to even).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops/kernel_table.h"
#include "ops/ops.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

struct RefBlock32 {
  float d;
  int8_t q[32];
  int sum16[2];
};

RefBlock32 ref_block32(const float* x) {
  RefBlock32 r{};
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  r.d = amax / 127.f;
  const float id = r.d > 0 ? 1.f / r.d : 0.f;
  for (int i = 0; i < 32; ++i) {
    const float v = std::nearbyint(x[i] * id);  // default rounding mode: half to even
    r.q[i] = static_cast<int8_t>(std::fmin(127.f, std::fmax(-128.f, v)));
    r.sum16[i / 16] += r.q[i];
  }
  return r;
}

// Random data with the features that break quantizers: all-zero blocks, one large outlier
// per block, and values that land exactly on rounding ties.
std::vector<float> hostile_activations(int64_t n, uint32_t seed) {
  std::vector<float> x = random_floats(n, seed, -3.f, 3.f);
  for (int64_t b = 0; b < n; b += 32) {
    const int64_t kind = (b / 32) % 4;
    if (kind == 1) std::fill(x.begin() + b, x.begin() + b + 32, 0.f);
    if (kind == 2) x[b + (b / 32) % 32] = 250.f;
    if (kind == 3) {
      // amax 127 gives d = 1, so k + 0.5 is an exact tie.
      x[b] = 127.f;
      for (int i = 1; i < 32; ++i) x[b + i] = static_cast<float>(i % 9) - 4.5f;
    }
  }
  return x;
}

TEST(ActQuant, Q8AMatchesReferenceOnEveryIsa) {
  for_each_isa([](const std::string& isa) {
    for (const int64_t n : {32, 96, 896, 1536, 8960}) {
      const std::vector<float> src = hostile_activations(n, static_cast<uint32_t>(n));
      Misaligned in(n * sizeof(float), 4);
      std::memcpy(in.data(), src.data(), n * sizeof(float));
      std::vector<BlockQ8_A> out(n / 32);
      active_kernels().quantize_q8a(reinterpret_cast<const float*>(in.data()), n, out.data());
      for (int64_t b = 0; b < n / 32; ++b) {
        const RefBlock32 r = ref_block32(src.data() + 32 * b);
        ASSERT_EQ(out[b].d, r.d) << isa << " n=" << n << " block " << b;
        ASSERT_EQ(out[b].s, r.d * static_cast<float>(r.sum16[0] + r.sum16[1])) << isa << " block " << b;
        ASSERT_EQ(std::memcmp(out[b].qs, r.q, 32), 0) << isa << " n=" << n << " block " << b;
      }
    }
  });
}

TEST(ActQuant, Q8KAMatchesReferenceOnEveryIsa) {
  for_each_isa([](const std::string& isa) {
    for (const int64_t n : {256, 768, 1536, 8960 - 8960 % 256, 4864 - 4864 % 256}) {
      const std::vector<float> src = hostile_activations(n, static_cast<uint32_t>(n) + 7);
      Misaligned in(n * sizeof(float), 12);
      std::memcpy(in.data(), src.data(), n * sizeof(float));
      std::vector<BlockQ8_KA> out(n / 256);
      active_kernels().quantize_q8ka(reinterpret_cast<const float*>(in.data()), n, out.data());
      for (int64_t b = 0; b < n / 256; ++b)
        for (int j = 0; j < 8; ++j) {
          const RefBlock32 r = ref_block32(src.data() + 256 * b + 32 * j);
          const auto& o = out[b];
          ASSERT_EQ(o.d[j], r.d) << isa << " n=" << n << " block " << b << "." << j;
          ASSERT_EQ(std::memcmp(o.qs + 32 * j, r.q, 32), 0) << isa << " block " << b << "." << j;
          for (int h = 0; h < 2; ++h) {
            ASSERT_EQ(o.s[2 * j + h], r.d * static_cast<float>(r.sum16[h])) << isa << " block " << b << "." << j;
            ASSERT_EQ(o.o16[2 * j + h], -32 * r.sum16[h]) << isa << " block " << b << "." << j;
          }
          ASSERT_EQ(o.s32[j], o.s[2 * j] + o.s[2 * j + 1]) << isa << " block " << b << "." << j;
        }
    }
  });
}

}  // namespace
}  // namespace edgellm::ops
