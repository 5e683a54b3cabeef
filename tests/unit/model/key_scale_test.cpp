// The calibrated key offset and outlier scales of q8_0/q4_0 caches (model/key_offset.h): the
// offset is the rotation-averaged mean of the calibration keys, only outlier channels (tied
// by RoPE pair) get a scale, the cache stores (k - c) / s, attention with the query times s
// equals fp32 attention closely (and far more closely than the offset alone when a rotating
// channel pair carries a large constant), and the context shift restores the key itself.
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

constexpr int32_t kHd = 64, kCal = 200;

ModelConfig config() { return one_layer_qwen2_like_config(kHd); }

// A key before RoPE like Qwen2.5-0.5B's layer 0: ordinary channels N(0, 1), a slow channel
// with a constant 40 (an offset removes it), and the fastest pair (0, 32) with a constant of
// 40 that RoPE turns by about a radian per position (no offset removes it).
std::vector<float> raw_key(std::mt19937& rng) {
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> k(kHd);
  for (auto& x : k) x = n(rng);
  k[0] += 40.f, k[31] += 40.f;
  return k;
}

KeyCalibration calibrate(const ModelConfig& c) {
  std::mt19937 rng(1);
  std::vector<float> keys;
  for (int32_t p = 0; p < kCal; ++p) {
    const std::vector<float> k = raw_key(rng);
    keys.insert(keys.end(), k.begin(), k.end());
  }
  return calibrate_keys(c, {keys}, kCal);
}

TEST(KeyScale, OffsetIsTheMeanAveragedOverRotationsAndOnlyOutlierPairsAreScaled) {
  const ModelConfig c = config();
  std::mt19937 rng(1);
  std::vector<float> keys, mean(kHd, 0.f);
  for (int32_t p = 0; p < kCal; ++p) {
    const std::vector<float> k = raw_key(rng);
    keys.insert(keys.end(), k.begin(), k.end());
    for (int32_t i = 0; i < kHd; ++i) mean[i] += k[i] / kCal;
  }
  const KeyCalibration kc = calibrate_keys(c, {keys}, kCal);
  const std::vector<float> want = key_offsets(c, {mean});
  ASSERT_EQ(kc.offset.size(), want.size());
  for (int32_t i = 0; i < kHd; ++i) EXPECT_NEAR(kc.offset[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << i;
  ASSERT_EQ(kc.scale.size(), static_cast<size_t>(kHd));
  // The fast pair averages to ~0, so its rms around the offset is 40 / sqrt(2) per channel;
  // the median channel's is ~1: s = 28 / (2 * 1).
  EXPECT_NEAR(kc.scale[0], 40.f / std::sqrt(2.f) / kScaleHeadroom, 2.f);
  EXPECT_EQ(kc.scale[0], kc.scale[32]) << "a RoPE pair shares its scale";
  for (int32_t i = 1; i < kHd; ++i)
    if (i != 32) EXPECT_EQ(kc.scale[i], 1.f) << "channel " << i << " is not an outlier";
  // Calibration that cannot apply: no keys, or a model that gets no offset.
  EXPECT_TRUE(calibrate_keys(c, {keys}, 0).offset.empty());
  ModelConfig capped = c;
  capped.attn_softcap = 30.f;
  EXPECT_TRUE(calibrate_keys(capped, {keys}, kCal).scale.empty());
  EXPECT_TRUE(calibrate_keys(c, {}, kCal).scale.empty());
}

// Relative error of attention (two query heads, fp32 values) over a cache's keys, the query
TEST(KeyScale, ScaledQueryMatchesFp32AttentionBetterThanTheOffsetAlone) {
  ModelConfig c = config(), offset_only = config();
  const KeyCalibration kc = calibrate(c);
  c.key_offset = offset_only.key_offset = kc.offset;
  c.key_scale = kc.scale;
  constexpr int32_t n = 300;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> keys, values(static_cast<size_t>(n) * kHd), q(2 * kHd);
  for (auto& x : values) x = nd(rng);
  for (auto& x : q) x = 2.f * nd(rng);
  for (int32_t h = 0; h < 2; ++h) q[h * kHd] = q[h * kHd + 32] = 0.05f * nd(rng);
  for (TensorType kt : {TensorType::Q8_0, TensorType::Q4_0}) {
    KvCache scaled(c, n, {kt, TensorType::F32}), plain(offset_only, n, {kt, TensorType::F32});
    ASSERT_NE(scaled.key_scale(0), nullptr);
    ASSERT_EQ(plain.key_scale(0), nullptr);
    keys.clear();
    std::vector<float> back(kHd);
    for (int32_t p = 0; p < n; ++p) {
      std::vector<float> k = raw_key(rng);
      ops::rope(k.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
      keys.insert(keys.end(), k.begin(), k.end());
      scaled.write(0, p, k.data(), &values[p * kHd]);
      plain.write(0, p, k.data(), &values[p * kHd]);
      // Stored as (k - c) / s: scaled back, within a block step of the key.
      ops::dequantize_row(kt, scaled.k(0, 0, p), back.data(), kHd);
      for (int32_t i = 0; i < kHd; ++i)
        ASSERT_NEAR(back[i] * kc.scale[i] + kc.offset[i], k[i], kt == TensorType::Q8_0 ? 0.6f : 6.f) << p << " " << i;
    }
    const float with = cached_key_attention_error(scaled, keys, values, q, n, kHd);
    const float without = cached_key_attention_error(plain, keys, values, q, n, kHd);
    EXPECT_LT(with * 3, without) << io::type_name(kt);
    if (kt == TensorType::Q8_0) EXPECT_LT(with, 0.03f) << "offset only: " << without;
  }
  // Float caches store the keys as computed.
  EXPECT_EQ(KvCache(c, 4, {TensorType::F16, TensorType::F32}).key_scale(0), nullptr);
}

TEST(KeyScale, ContextShiftRotatesTheKeyItself) {
  ModelConfig c = config();
  c.rope_base = 1e4f;
  const KeyCalibration kc = calibrate(c);
  c.key_offset = kc.offset;
  c.key_scale = kc.scale;
  ASSERT_GT(c.key_scale[0], 4.f);
  constexpr int32_t drop = 700, n = 710;
  KvCache kv(c, n, {TensorType::Q8_0, TensorType::F32});
  std::mt19937 rng(5);
  std::vector<std::vector<float>> raw;
  std::vector<float> zero(kHd, 0.f);
  for (int32_t p = 0; p < n; ++p) {
    std::vector<float> k = raw_key(rng);
    raw.push_back(k);
    ops::rope(k.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
    kv.write(0, p, k.data(), zero.data());
  }
  kv.set_size(n);
  shift_kv_cache(c, kv, 2, drop);
  std::vector<float> got(kHd);
  for (int32_t p = 2; p < n - drop; ++p) {
    std::vector<float> want = raw[p + drop];
    ops::rope(want.data(), kHd, c.n_rot, p, c.rope_base, c.rope_freq_scale, c.rope_neox);
    ops::dequantize_row(TensorType::Q8_0, kv.k(0, 0, p), got.data(), kHd);
    for (int32_t i = 0; i < kHd; ++i)
      EXPECT_NEAR(got[i] * c.key_scale[i] + c.key_offset[i], want[i], 1.f) << "position " << p << " element " << i;
  }
}

}  // namespace
}  // namespace edgellm::model
