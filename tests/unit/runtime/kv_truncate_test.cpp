// Session::truncate and KvCache::truncate (the roll-back of speculative decoding): a rolled-back
// cache continues exactly as a fresh one; bad lengths are refused and change nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/engine.h"
#include "model_cache.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

std::unique_ptr<Engine> load_or_null(const std::string& name) { return testing::load_cached_or_null(name); }

TEST(KvTruncate, RolledBackSessionContinuesLikeAFreshOne) {
  auto e = load_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!e) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  const int32_t n_vocab = e->config().n_vocab;
  const auto base = e->tokenize_prompt("The quick brown fox jumps over the lazy dog and runs");
  const std::vector<int32_t> a = {base.begin(), base.begin() + 6}, tail1 = {base.begin() + 6, base.end()},
                             tail2 = {17, 1000, 2000, 42};
  Session s(*e, 64), fresh(*e, 64);
  std::vector<float> l1(tail1.size() * n_vocab), l2(tail2.size() * n_vocab), ref((a.size() + tail2.size()) * n_vocab);
  s.extend(a, ref.data());
  s.extend(tail1, l1.data());
  ASSERT_EQ(s.cache().size(), static_cast<int32_t>(base.size()));
  s.truncate(static_cast<int32_t>(a.size()));
  EXPECT_EQ(s.tokens(), a);
  EXPECT_EQ(s.cache().size(), static_cast<int32_t>(a.size()));
  s.extend(tail2, l2.data());
  std::vector<int32_t> all = a;
  all.insert(all.end(), tail2.begin(), tail2.end());
  fresh.extend(all, ref.data());
  EXPECT_EQ(std::memcmp(l2.data(), &ref[a.size() * n_vocab], l2.size() * sizeof(float)), 0)
      << "logits after truncation differ from a fresh cache's";
  EXPECT_EQ(s.tokens(), all);
  // Bad lengths are refused and change nothing.
  EXPECT_THROW(s.truncate(-1), InvalidArgument);
  EXPECT_THROW(s.truncate(static_cast<int32_t>(all.size()) + 1), InvalidArgument);
  EXPECT_EQ(s.tokens(), all);
  s.truncate(0);
  EXPECT_TRUE(s.tokens().empty());
  EXPECT_EQ(s.cache().size(), 0);
  // Too many tokens for the context: refused before running.
  EXPECT_THROW(s.extend(std::vector<int32_t>(65, 1), l2.data()), InvalidArgument);
}

TEST(KvTruncate, CacheRefusesToGrowOrGoNegative) {
  model::ModelConfig c;
  c.n_layer = 1;
  c.n_head = 1;
  c.n_head_kv = 1;
  c.head_dim = 4;
  model::KvCache kv(c, 8);
  kv.set_size(5);
  kv.truncate(3);
  EXPECT_EQ(kv.size(), 3);
  EXPECT_THROW(kv.truncate(4), InvalidArgument);
  EXPECT_THROW(kv.truncate(-1), InvalidArgument);
  EXPECT_EQ(kv.size(), 3);
  kv.truncate(0);
  EXPECT_EQ(kv.size(), 0);
}

}  // namespace
}  // namespace edgellm::runtime
