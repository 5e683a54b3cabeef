// Saved sessions (Session::save / restore) on a real model: a restored session holds the same
// tokens and cache bytes, continues with the same greedy tokens as the uninterrupted one and
// reuses its prefix; every damaged, foreign or mismatched file is an Error that leaves the
// session empty, and a failed save leaves the previous file as it was.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "model_cache.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

namespace fs = std::filesystem;

class SessionFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf").release(); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf is not in the model cache";
    dir_ = fs::temp_directory_path() / ("edgellm_session_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::vector<int32_t> prompt() const {
    return engine_->tokenize_chat(
        std::vector<chat::Message>{{"user", "Name three rivers in Europe."}}, true);
  }
  static GenerateParams greedy(int32_t n) {
    GenerateParams gp;
    gp.sampling.temperature = 0.f;
    gp.max_tokens = n;
    return gp;
  }
  // A session that ran the prompt and 12 greedy tokens, every generated token in its cache.
  std::unique_ptr<Session> generated(model::KvTypes kv = {}) const {
    auto s = std::make_unique<Session>(*engine_, 256, kv);
    auto res = s->generate(prompt(), greedy(12));
    std::vector<float> logits(engine_->config().n_vocab);
    s->extend({res.tokens.back()}, logits.data());  // the last sampled token is never run by generate
    return s;
  }
  static void expect_same_cache(const Session& a, const Session& b) {
    ASSERT_EQ(a.tokens(), b.tokens());
    ASSERT_EQ(a.cache().size(), b.cache().size());
    const auto& ca = a.cache();
    const auto& cb = b.cache();
    for (int32_t l = 0; l < ca.n_layer(); ++l)
      for (int32_t h = 0; h < ca.kv_dim() / ca.head_dim(); ++h) {
        ASSERT_EQ(0, std::memcmp(ca.k(l, h, 0), cb.k(l, h, 0), ca.size() * ca.k_head_bytes())) << "layer " << l;
        ASSERT_EQ(0, std::memcmp(ca.v(l, h, 0), cb.v(l, h, 0), ca.size() * ca.v_head_bytes())) << "layer " << l;
      }
  }
  void expect_refused(const std::string& file, const std::string& fragment, int32_t n_ctx = 256,
                      model::KvTypes kv = {}) const {
    Session s(*engine_, n_ctx, kv);
    if (n_ctx > 64) s.generate(prompt(), greedy(2));  // not empty before: a refused restore must empty it
    try {
      s.restore(file);
      FAIL() << "restored " << file;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_TRUE(s.tokens().empty());
    EXPECT_EQ(s.cache().size(), 0);
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void write(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }

  static Engine* engine_;
  fs::path dir_;
};
Engine* SessionFile::engine_ = nullptr;

TEST_F(SessionFile, RestoredSessionHoldsTheSameTokensCacheAndAppData) {
  for (model::KvTypes kv : {model::KvTypes{}, model::KvTypes{io::TensorType::F16, io::TensorType::Q8_0},
                            model::KvTypes{io::TensorType::Q4_0, io::TensorType::Q4_0}}) {
    auto a = generated(kv);
    a->save(path("s"), R"([{"role":"user"}])");
    Session b(*engine_, 256, kv);
    std::string app;
    EXPECT_EQ(b.restore(path("s"), &app), static_cast<int32_t>(a->tokens().size()));
    EXPECT_EQ(app, R"([{"role":"user"}])");
    expect_same_cache(*a, b);
  }
}

TEST_F(SessionFile, ResumedGenerationContinuesLikeTheUninterruptedOne) {
  Session whole(*engine_, 256);
  const auto all = whole.generate(prompt(), greedy(24)).tokens;
  auto first = generated();  // the same first 12 tokens
  first->save(path("s"));
  Session resumed(*engine_, 256);
  resumed.restore(path("s"));
  const auto rest = resumed.generate(resumed.tokens(), greedy(12));
  EXPECT_EQ(rest.n_prompt_evaluated, 1) << "only the last token should run again";
  std::vector<int32_t> joined(all.begin(), all.begin() + 12);
  joined.insert(joined.end(), rest.tokens.begin(), rest.tokens.end());
  EXPECT_EQ(joined, all);
}

TEST_F(SessionFile, EmptySessionRoundTrips) {
  Session a(*engine_, 64);
  a.save(path("empty"));
  Session b(*engine_, 64);
  EXPECT_EQ(b.restore(path("empty")), 0);
  EXPECT_TRUE(b.tokens().empty());
}

TEST_F(SessionFile, DamagedFilesAreRefusedAndLeaveTheSessionEmpty) {
  generated()->save(path("good"));
  const std::string good = read(path("good"));
  write(path("truncated"), good.substr(0, good.size() / 2));
  expect_refused(path("truncated"), "truncated");
  write(path("header-only"), good.substr(0, 20));
  expect_refused(path("header-only"), "truncated");
  for (size_t at : {size_t{70}, good.size() / 2, good.size() - 9}) {  // tokens, cache rows, checksum
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x40);
    write(path("flipped"), bad);
    expect_refused(path("flipped"), "damaged");
  }
  write(path("trailing"), good + "x");
  expect_refused(path("trailing"), "trailing");
  std::string magic = good;
  magic[0] = 'X';
  write(path("magic"), magic);
  expect_refused(path("magic"), "not an edgellm saved session");
  std::string version = good;
  version[8] = 9;
  write(path("version"), version);
  expect_refused(path("version"), "version 9");
  write(path("zero"), "");
  expect_refused(path("zero"), "truncated");
  expect_refused(path("missing"), "cannot open");
}

TEST_F(SessionFile, MismatchedModelTypesOrContextAreRefused) {
  generated()->save(path("s"));
  std::string other = read(path("s"));
  other[16] = static_cast<char>(other[16] ^ 1);  // the model checksum: as if saved with another file
  write(path("other-model"), other);
  expect_refused(path("other-model"), "another model file");
  expect_refused(path("s"), "different KV cache type", 256, {io::TensorType::F16, io::TensorType::F32});
  expect_refused(path("s"), "raise the context size", 16);
}

TEST_F(SessionFile, FailedSaveKeepsThePreviousFile) {
  auto a = generated();
  a->save(path("s"));
  const std::string before = read(path("s"));
  EXPECT_THROW(a->save(path("no-such-dir/s")), Error);
  fs::create_directories(path("s.tmp"));  // the temporary file cannot be created
  Session b(*engine_, 64);
  EXPECT_THROW(b.save(path("s")), Error);
  EXPECT_EQ(read(path("s")), before);
}

}  // namespace
}  // namespace edgellm::runtime
