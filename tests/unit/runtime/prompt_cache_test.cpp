// DiskPromptCache on SmolLM2: the longest stored prefix is loaded and truncated to what the new
// prompt shares; an entry extended by a newer one is replaced; least recently used entries go
// beyond max_entries; another LoRA key or a shorter-than-held prefix loads nothing; a folder
// is re-indexed at start-up; short prompts are not stored.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "model_cache.h"
#include "runtime/prompt_cache.h"

namespace edgellm::runtime {
namespace {

namespace fs = std::filesystem;

class PromptCache : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!engine_) GTEST_SKIP() << "SmolLM2 is not in the model cache";
    dir_ = fs::temp_directory_path() / ("edgellm_pc_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // A session that ran `tokens` (every one cached).
  std::unique_ptr<Session> ran(const std::vector<int32_t>& tokens) {
    auto s = std::make_unique<Session>(*engine_, 256);
    std::vector<float> logits(engine_->config().n_vocab);
    s->load_prompt(tokens, logits.data());
    return s;
  }
  static std::vector<int32_t> seq(int32_t from, int32_t n) {
    std::vector<int32_t> v;
    for (int32_t i = 0; i < n; ++i) v.push_back(from + i);
    return v;
  }
  static std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  size_t files() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) n += e.path().extension() == ".kvstate";
    return n;
  }

  std::unique_ptr<Engine> engine_;
  fs::path dir_;
};

TEST_F(PromptCache, LoadsTheLongestSharedPrefixAndReindexesAtStart) {
  const auto sys = seq(100, 40), a = cat(sys, seq(500, 10)), b = cat(seq(100, 20), seq(700, 30));
  {
    DiskPromptCache pc(*engine_, {}, {dir_.string(), 16, 8});
    auto s = ran(a);
    pc.store(s->cache(), s->tokens(), "");
    s = ran(b);
    pc.store(s->cache(), s->tokens(), "");
    EXPECT_EQ(pc.size(), 2u);
  }
  DiskPromptCache pc(*engine_, {}, {dir_.string(), 16, 8});  // a restart
  ASSERT_EQ(pc.size(), 2u);
  const auto prompt = cat(sys, seq(900, 5));
  model::KvCache cache(engine_->config(), 256);
  std::vector<int32_t> tokens;
  EXPECT_EQ(pc.load_prefix(prompt, "", 0, prompt.size() - 1, cache, tokens), sys.size());
  EXPECT_EQ(tokens, sys);
  EXPECT_EQ(cache.size(), static_cast<int32_t>(sys.size()));
  // The loaded rows are the rows a session computes for the same tokens.
  auto direct = ran(sys);
  for (int32_t l = 0; l < cache.n_layer(); ++l)
    for (int32_t h = 0; h < cache.kv_dim() / cache.head_dim(); ++h)
      EXPECT_EQ(0, std::memcmp(cache.k(l, h, 0), direct->cache().k(l, h, 0), sys.size() * cache.k_head_bytes()));
  EXPECT_EQ(pc.hits(), 1u);
  // Holding as much already, or another adapter set, loads nothing and leaves the cache alone.
  EXPECT_EQ(pc.load_prefix(prompt, "", sys.size(), prompt.size() - 1, cache, tokens), 0u);
  EXPECT_EQ(pc.load_prefix(prompt, "lora.gguf:1", 0, prompt.size() - 1, cache, tokens), 0u);
  EXPECT_EQ(tokens, sys);
  // The limit caps what is loaded (the last prompt token must still run).
  EXPECT_EQ(pc.load_prefix(a, "", 0, a.size() - 1, cache, tokens), a.size() - 1);
}

TEST_F(PromptCache, ExtendedEntriesAreReplacedAndTheLeastRecentlyUsedGo) {
  DiskPromptCache pc(*engine_, {}, {dir_.string(), 8, 2});
  auto store = [&](const std::vector<int32_t>& t) {
    auto s = ran(t);
    pc.store(s->cache(), s->tokens(), "");
  };
  store(seq(100, 10));
  store(seq(100, 20));  // extends the first: it replaces it
  EXPECT_EQ(pc.size(), 1u);
  EXPECT_EQ(files(), 1u);
  store(seq(100, 15));  // a prefix of a stored entry: nothing new
  EXPECT_EQ(pc.size(), 1u);
  store(seq(300, 10));
  store(seq(600, 10));  // a third entry: the oldest (100..119) goes
  EXPECT_EQ(pc.size(), 2u);
  EXPECT_EQ(files(), 2u);
  model::KvCache cache(engine_->config(), 256);
  std::vector<int32_t> tokens;
  EXPECT_EQ(pc.load_prefix(cat(seq(100, 20), {1}), "", 0, 20, cache, tokens), 0u);
  EXPECT_EQ(pc.load_prefix(cat(seq(300, 10), {1}), "", 0, 10, cache, tokens), 10u);
  store(seq(100, 9));  // stored (9 >= min_tokens); the least recently used entry (600..) goes
  EXPECT_EQ(pc.load_prefix(cat(seq(600, 10), {1}), "", 0, 10, cache, tokens), 0u);
  store(seq(800, 7));  // under min_tokens: not stored
  EXPECT_EQ(pc.size(), 2u);
}

}  // namespace
}  // namespace edgellm::runtime
