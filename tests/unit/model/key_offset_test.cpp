// The key offset of q8_0/q4_0 caches (model/key_offset.h): it is the RoPE-averaged key bias,
// attention ignores it exactly, it brings q8_0 keys with Qwen2-like bias outliers close to
// fp32 attention, and the context shift rotates the key itself, not the stored difference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/key_offset.h"
#include "model/kv_cache.h"
#include "model/kv_shift.h"
#include "ops/ops.h"
#include "one_layer_config.h"

namespace edgellm::model {
namespace {
using io::TensorType;

constexpr int32_t kHd = 64;

ModelConfig config() { return one_layer_qwen2_like_config(kHd); }

// A Qwen2-like key bias: ordinary channels around 1, a few slow channels (the last of each
// half, which RoPE barely turns) around 150.
std::vector<float> bias() {
  std::vector<float> b(kHd);
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.f, 1.f);
  for (auto& x : b) x = n(rng);
  b[30] = 140.f, b[31] = -150.f, b[62] = 155.f, b[63] = 120.f;
  return b;
}

// Key at position p: RoPE(x + bias, p) as the forward pass computes it.
std::vector<float> key_at(const ModelConfig& c, const std::vector<float>& b, std::mt19937& rng, int32_t p) {
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> k(b);
  for (auto& x : k) x += n(rng);
  ops::rope(k.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
  return k;
}

TEST(KeyOffset, IsTheBiasAveragedOverRotations) {
  ModelConfig c = config();
  c.n_rot = 48;  // the last 16 channels are not rotated: their offset is the bias itself
  c.rope_neox = false;
  const std::vector<float> b = bias();
  const std::vector<float> off = key_offsets(c, {b});
  ASSERT_EQ(off.size(), static_cast<size_t>(kHd));
  std::vector<double> mean(kHd, 0.0);
  for (int32_t p = 0; p < kOffsetPositions; ++p) {
    std::vector<float> r(b);
    ops::rope(r.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
    for (int32_t i = 0; i < kHd; ++i) mean[i] += r[i];
  }
  for (int32_t i = 0; i < kHd; ++i) EXPECT_NEAR(off[i], mean[i] / kOffsetPositions, 1e-3 * (1 + std::fabs(b[i]))) << i;
  for (int32_t i = 48; i < kHd; ++i) EXPECT_EQ(off[i], b[i]);
}

TEST(KeyOffset, NoneWhereSoftmaxWouldNotIgnoreIt) {
  const std::vector<float> b = bias();
  ModelConfig c = config();
  EXPECT_FALSE(key_offsets(c, {b}).empty());
  c.attn_softcap = 50.f;
  EXPECT_TRUE(key_offsets(c, {b}).empty());
  c = config();
  c.qk_norm = true;
  EXPECT_TRUE(key_offsets(c, {b}).empty());
  EXPECT_TRUE(key_offsets(config(), {}).empty());
  // Only block-type keys get it: float caches store the keys as computed.
  c = config();
  c.key_offset = key_offsets(c, {b});
  EXPECT_EQ(KvCache(c, 4, {TensorType::F16, TensorType::F32}).key_offset(0), nullptr);
  EXPECT_NE(KvCache(c, 4, {TensorType::Q8_0, TensorType::F32}).key_offset(0), nullptr);
  EXPECT_NE(KvCache(c, 4, {TensorType::Q4_0, TensorType::Q8_0}).key_offset(0), nullptr);
}

TEST(KeyOffset, AttentionIgnoresItAndQ8KeysComeCloseToFp32) {
  ModelConfig c = config();
  const std::vector<float> b = bias();
  c.key_offset = key_offsets(c, {b});
  ModelConfig plain = config();  // no offset: what q8_0 keys gave before
  constexpr int32_t n = 300;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> keys, values(static_cast<size_t>(n) * kHd), q(2 * kHd);
  for (auto& x : values) x = nd(rng);
  // Queries mostly in the ordinary channels (where positions differ), as trained models' are.
  for (auto& x : q) x = 3.f * nd(rng);
  for (int32_t h = 0; h < 2; ++h)
    for (int32_t i : {30, 31, 62, 63}) q[h * kHd + i] = 0.05f * nd(rng);
  KvCache f32(c, n), shifted_f32(plain, n), q8(c, n, {TensorType::Q8_0, TensorType::F32}),
      q8_plain(plain, n, {TensorType::Q8_0, TensorType::F32});
  std::vector<float> minus(kHd);
  for (int32_t p = 0; p < n; ++p) {
    const std::vector<float> k = key_at(c, b, rng, p);
    keys.insert(keys.end(), k.begin(), k.end());
    f32.write(0, p, k.data(), &values[p * kHd]);
    for (int32_t i = 0; i < kHd; ++i) minus[i] = k[i] - c.key_offset[i];
    shifted_f32.write(0, p, minus.data(), &values[p * kHd]);
    q8.write(0, p, k.data(), &values[p * kHd]);
    q8_plain.write(0, p, k.data(), &values[p * kHd]);
  }
  // Exact in arithmetic: fp32 keys minus the offset attend as the keys themselves.
  EXPECT_LT(cached_key_attention_error(shifted_f32, keys, values, q, n, kHd), 1e-4f);
  EXPECT_EQ(cached_key_attention_error(f32, keys, values, q, n, kHd), 0.f);
  const float with = cached_key_attention_error(q8, keys, values, q, n, kHd);
  const float without = cached_key_attention_error(q8_plain, keys, values, q, n, kHd);
  EXPECT_LT(with, 0.03f) << "without the offset: " << without;  // measured 0.012 against 0.54
  EXPECT_LT(with * 8, without);
}

TEST(KeyOffset, ContextShiftRotatesTheKeyNotTheStoredDifference) {
  ModelConfig c = config();
  c.rope_base = 1e4f;  // mid channels turn by about a radian over the shift
  std::vector<float> b(kHd, 0.5f);
  b[28] = 90.f, b[60] = -70.f;  // a slow pair: its offset is large, and the shift turns it by 0.3 rad
  c.key_offset = key_offsets(c, {b});
  ASSERT_GT(std::fabs(c.key_offset[28]), 50.f);
  constexpr int32_t drop = 1000, n = 1010;
  KvCache kv(c, n, {TensorType::Q8_0, TensorType::F32});
  std::mt19937 rng(5);
  std::vector<std::vector<float>> raw;  // keys before RoPE
  std::vector<float> zero(kHd, 0.f);
  for (int32_t p = 0; p < n; ++p) {
    std::vector<float> k = key_at(c, b, rng, 0);
    raw.push_back(k);
    ops::rope(k.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
    kv.write(0, p, k.data(), zero.data());
  }
  kv.set_size(n);
  shift_kv_cache(c, kv, 2, drop);
  ASSERT_EQ(kv.size(), n - drop);
  std::vector<float> got(kHd);
  for (int32_t p = 2; p < n - drop; ++p) {
    std::vector<float> want = raw[p + drop];
    ops::rope(want.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
    ops::dequantize_row(TensorType::Q8_0, kv.k(0, 0, p), got.data(), kHd);
    for (int32_t i = 0; i < kHd; ++i)
      EXPECT_NEAR(got[i] + c.key_offset[i], want[i], 1.5f) << "position " << p << " element " << i;
  }
}

}  // namespace
}  // namespace edgellm::model
