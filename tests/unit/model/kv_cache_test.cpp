// KvCache storage types: sizes, the write path against the reference conversion, and clear
// errors for unknown or unusable types.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "model/kv_cache.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::model {
namespace {
using io::TensorType;

ModelConfig config(int32_t head_dim) {
  ModelConfig c;
  c.n_layer = 3;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = head_dim;
  return c;
}

TEST(KvCache, BytesPerTokenFollowTheTypes) {
  const ModelConfig c = config(64);  // kv_dim 128: 4 blocks of 32
  EXPECT_EQ(KvCache(c, 8).bytes_per_token(), 3u * 2 * 128 * 4);
  EXPECT_EQ(KvCache(c, 8, {TensorType::F16, TensorType::F16}).bytes_per_token(), 3u * 2 * 128 * 2);
  EXPECT_EQ(KvCache(c, 8, {TensorType::Q8_0, TensorType::Q8_0}).bytes_per_token(), 3u * 2 * 4 * 34);
  EXPECT_EQ(KvCache(c, 8, {TensorType::Q4_0, TensorType::Q4_0}).bytes_per_token(), 3u * 2 * 4 * 18);
  const KvCache mixed(c, 10, {TensorType::Q8_0, TensorType::F16});
  EXPECT_EQ(mixed.k_row_bytes(), 4u * 34);
  EXPECT_EQ(mixed.v_row_bytes(), 128u * 2);
  EXPECT_EQ(mixed.k_head_bytes(), 2u * 34);
  EXPECT_EQ(mixed.v_head_bytes(), 64u * 2);
  EXPECT_EQ(mixed.capacity_bytes(), 10u * 3 * (4 * 34 + 128 * 2));
}

TEST(KvCache, WriteStoresTheReferenceConversion) {
  const ModelConfig c = config(64);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-3.f, 3.f);
  std::vector<float> key(128), value(128);
  for (auto& x : key) x = dist(rng);
  for (auto& x : value) x = dist(rng);
  for (TensorType kt : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0})
    for (TensorType vt : {TensorType::F32, TensorType::Q8_0}) {
      KvCache kv(c, 4, {kt, vt});
      kv.write(2, 3, key.data(), value.data());
      std::vector<uint8_t> want_k(kv.k_row_bytes()), want_v(kv.v_row_bytes());
      ops::quantize_row(kt, key.data(), want_k.data(), 128);
      ops::quantize_row(vt, value.data(), want_v.data(), 128);
      std::vector<uint8_t> got_k(kv.k_row_bytes()), got_v(kv.v_row_bytes());
      kv.read_k(2, 3, got_k.data());
      kv.read_v(2, 3, got_v.data());
      EXPECT_EQ(got_k, want_k) << io::type_name(kt);
      EXPECT_EQ(got_v, want_v) << io::type_name(vt);
      // Head-major: head 1 of position 3 is its row's second half, n_ctx rows after head 0's.
      EXPECT_EQ(0, std::memcmp(kv.k(2, 1, 3), &want_k[kv.k_head_bytes()], kv.k_head_bytes())) << io::type_name(kt);
      EXPECT_EQ(kv.k(2, 1, 3), kv.k(2, 0, 3) + 4 * kv.k_head_bytes());
      EXPECT_EQ(0, std::memcmp(kv.v(2, 1, 3), &want_v[kv.v_head_bytes()], kv.v_head_bytes())) << io::type_name(vt);
    }
}

// The key offset is subtracted in a scratch row before quantizing; two threads writing rows of
// one cache at once must not share that row (a shared one mixed their keys).
TEST(KvCache, ThreadsWritingOneOffsetCacheKeepTheirOwnKeys) {
  ModelConfig c = config(64);
  c.n_layer = 32;  // many rows: a mix-up hits about one write in a thousand
  c.key_offset.assign(static_cast<size_t>(c.n_layer) * 128, 0.5f);
  constexpr int32_t n = 4000;
  const KvTypes types{TensorType::Q8_0, TensorType::Q8_0};
  KvCache together(c, n, types), alone(c, n, types);
  ASSERT_NE(together.key_offset(0), nullptr);
  std::vector<float> keys(static_cast<size_t>(n) * 128), value(128, 0.f);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-3.f, 3.f);
  for (auto& x : keys) x = dist(rng);
  auto write_every_other = [&](KvCache& kv, int32_t first) {
    for (int32_t layer = 0; layer < c.n_layer; ++layer)
      for (int32_t p = first; p < n; p += 2) kv.write(layer, p, &keys[p * 128], value.data());
  };
  std::thread even(write_every_other, std::ref(together), 0), odd(write_every_other, std::ref(together), 1);
  even.join();
  odd.join();
  write_every_other(alone, 0);
  write_every_other(alone, 1);
  int32_t mixed = 0;
  for (int32_t layer = 0; layer < c.n_layer; ++layer)
    for (int32_t p = 0; p < n; ++p)
      for (int32_t h = 0; h < c.n_head_kv; ++h)
        mixed += std::memcmp(together.k(layer, h, p), alone.k(layer, h, p), alone.k_head_bytes()) != 0;
  EXPECT_EQ(mixed, 0) << "rows whose key was mixed with another thread's";
}

TEST(KvCache, TypeNames) {
  EXPECT_EQ(kv_type_from_name("f32", "-ctk"), TensorType::F32);
  EXPECT_EQ(kv_type_from_name("F16", "-ctk"), TensorType::F16);
  EXPECT_EQ(kv_type_from_name("q8_0", "-ctv"), TensorType::Q8_0);
  EXPECT_EQ(kv_type_from_name("Q4_0", "-ctv"), TensorType::Q4_0);
  EXPECT_EQ(kv_type_name(TensorType::Q8_0), "q8_0");
  try {
    kv_type_from_name("q9_0", "-ctk");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("-ctk: unknown KV cache type 'q9_0' (valid: f32, f16, q8_0, q4_0)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(kv_type_from_name("bf16", "-ctv"), InvalidArgument);
  EXPECT_THROW(kv_type_from_name("", "-ctv"), InvalidArgument);
}

TEST(KvCache, RejectsTypesTheModelCannotUse) {
  // head_dim 80: 32-element blocks would straddle heads.
  EXPECT_THROW(KvCache(config(80), 4, {TensorType::Q8_0, TensorType::F32}), InvalidArgument);
  EXPECT_THROW(KvCache(config(80), 4, {TensorType::F32, TensorType::Q4_0}), InvalidArgument);
  EXPECT_NO_THROW(KvCache(config(80), 4, {TensorType::F16, TensorType::F16}));
  EXPECT_THROW(KvCache(config(64), 4, {TensorType::BF16, TensorType::F32}), InvalidArgument);
  EXPECT_THROW(KvCache(config(64), 0), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::model
