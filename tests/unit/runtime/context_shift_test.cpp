// Context shift on real models (SmolLM2: interleaved RoPE pairs; Qwen2.5 0.5B: NeoX pairs,
// QKV bias; Gemma 3: a local and a global RoPE base): after dropping a span, the moved layer-0
// keys equal those computed directly at the new positions (layer 0's keys depend only on the
// token and its position), values move unchanged, the kept prefix is untouched, and
// Session::shift_to finds the span a re-rendered conversation dropped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "model/kv_shift.h"
#include "model_cache.h"
#include "ops/ops.h"
#include "runtime/context_shift.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

std::vector<float> row(const model::KvCache& c, bool key, int32_t layer, int32_t pos) {
  std::vector<float> out(static_cast<size_t>(c.kv_dim()));
  const io::TensorType t = key ? c.types().k : c.types().v;
  std::vector<uint8_t> raw(key ? c.k_row_bytes() : c.v_row_bytes());
  if (key) c.read_k(layer, pos, raw.data());
  else c.read_v(layer, pos, raw.data());
  ops::dequantize_row(t, raw.data(), out.data(), c.kv_dim());
  return out;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct Case {
  const char* name;
  const char* file;
  model::KvTypes kv;
  float tol;  // max |diff| over max |key|: fp32 rounding, or the second q8_0 rounding
};

class ContextShift : public ::testing::TestWithParam<Case> {};

TEST_P(ContextShift, MovedKeysEqualKeysComputedAtTheNewPositions) {
  auto engine = testing::load_cached_or_null(GetParam().file);
  if (!engine) GTEST_SKIP() << GetParam().file << " is not in the model cache";
  const auto& tok = engine->tokenizer();
  const auto head = tok.encode("The kept part of the prompt.", false, false);
  const auto span = tok.encode(" This sentence is dropped from the middle of the context.", false, false);
  const auto tail = tok.encode(" And this one moves down over it, far enough to matter.", false, false);
  std::vector<int32_t> full = head, shifted = head;
  full.insert(full.end(), span.begin(), span.end());
  full.insert(full.end(), tail.begin(), tail.end());
  shifted.insert(shifted.end(), tail.begin(), tail.end());

  Session a(*engine, 128, GetParam().kv), b(*engine, 128, GetParam().kv);
  std::vector<float> logits(engine->config().n_vocab);
  a.load_prompt(full, logits.data());
  // load_prompt leaves the last token run but cached too: every position is filled.
  ASSERT_EQ(a.cache().size(), static_cast<int32_t>(full.size()));
  const auto before_v = row(a.cache(), false, 3, static_cast<int32_t>(full.size()) - 1);
  const auto before_head = row(a.cache(), true, 5, 1);
  model::KvCache& cache = const_cast<model::KvCache&>(a.cache());
  model::shift_kv_cache(engine->config(), cache, static_cast<int32_t>(head.size()), static_cast<int32_t>(span.size()));
  ASSERT_EQ(cache.size(), static_cast<int32_t>(shifted.size()));
  b.load_prompt(shifted, logits.data());

  for (size_t p = head.size(); p < shifted.size(); ++p) {
    const auto got = row(cache, true, 0, static_cast<int32_t>(p));
    const auto want = row(b.cache(), true, 0, static_cast<int32_t>(p));
    float diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
    EXPECT_LE(diff, GetParam().tol * max_abs(want)) << "position " << p;
  }
  EXPECT_EQ(row(cache, false, 3, static_cast<int32_t>(shifted.size()) - 1), before_v) << "values move as stored";
  EXPECT_EQ(row(cache, true, 5, 1), before_head) << "the kept prefix is untouched";
}

INSTANTIATE_TEST_SUITE_P(
    Models, ContextShift,
    ::testing::Values(Case{"smollm2_f32", "SmolLM2-135M-Instruct.Q4_1.gguf", {}, 2e-5f},
                      Case{"smollm2_q8_0", "SmolLM2-135M-Instruct.Q4_1.gguf", {io::TensorType::Q8_0, io::TensorType::Q8_0},
                           2e-2f},
                      Case{"qwen05b_f32", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", {}, 2e-5f},
                      // Calibrated key offset and outlier scales (model/key_offset.h) in play.
                      Case{"qwen05b_q8_0", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                           {io::TensorType::Q8_0, io::TensorType::Q8_0}, 2e-2f},
                      Case{"gemma3_f16", "gemma-3-270m-q4_k_m.gguf", {io::TensorType::F16, io::TensorType::F16}, 2e-3f}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(ContextShiftArgs, BadRangesAreRefused) {
  auto engine = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!engine) GTEST_SKIP() << "SmolLM2 is not in the model cache";
  model::KvCache cache(engine->config(), 16);
  cache.set_size(8);
  EXPECT_THROW(model::shift_kv_cache(engine->config(), cache, -1, 2), InvalidArgument);
  EXPECT_THROW(model::shift_kv_cache(engine->config(), cache, 4, 5), InvalidArgument);
  EXPECT_THROW(model::shift_kv_cache(engine->config(), cache, 2, -1), InvalidArgument);
  model::shift_kv_cache(engine->config(), cache, 8, 0);
  EXPECT_EQ(cache.size(), 8);
}

TEST(ContextShiftSession, ShiftToKeepsTheSpanThatReappears) {
  auto engine = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!engine) GTEST_SKIP() << "SmolLM2 is not in the model cache";
  std::vector<int32_t> sys = {1, 2, 3, 4}, old_turn = {10, 11, 12, 13, 14, 15}, kept(20);
  for (int32_t i = 0; i < 20; ++i) kept[static_cast<size_t>(i)] = 20 + i;  // a turn: at least kMinShiftRun
  std::vector<int32_t> before = sys, after = sys;
  before.insert(before.end(), old_turn.begin(), old_turn.end());
  before.insert(before.end(), kept.begin(), kept.end());
  after.insert(after.end(), kept.begin(), kept.end());
  after.insert(after.end(), {30, 31});  // the new message
  Session s(*engine, 64);
  std::vector<float> logits(engine->config().n_vocab);
  s.load_prompt(before, logits.data());
  EXPECT_EQ(s.shift_to(after), static_cast<int32_t>(sys.size() + kept.size()));
  EXPECT_EQ(s.tokens(), std::vector<int32_t>(after.begin(), after.end() - 2));
  EXPECT_EQ(s.cache().size(), static_cast<int32_t>(s.tokens().size()));
  EXPECT_EQ(s.load_prompt(after, logits.data()), 2) << "only the new message runs";
  // Nothing in common beyond the prefix: the cache is left for load_prompt to truncate.
  EXPECT_EQ(s.shift_to({1, 2, 3, 4, 99, 98}), 4);
  EXPECT_EQ(s.tokens().size(), after.size());
}

// The plan alone (the scheduler's slots use it as Session::shift_to does). Turns are runs of
// distinct ids: sys (3), a (10), b (20), c (20).
std::vector<int32_t> run_of(int32_t first, int32_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = first + i;
  return v;
}
std::vector<int32_t> join(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> v;
  for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

TEST(ContextShiftPlan, FindsTheLongestRunAfterTheCommonPrefix) {
  const auto sys = run_of(1, 3), a = run_of(100, 10), b = run_of(200, 20), c = run_of(300, 20);
  const std::vector<int32_t> cached = join({sys, a, b, c});
  ShiftPlan p = plan_context_shift(cached, join({sys, b, c, {90}}));  // the oldest turn dropped
  EXPECT_EQ(p.keep, 3u);
  EXPECT_EQ(p.drop, 10u);
  EXPECT_EQ(p.len, 40u);
  p = plan_context_shift(cached, join({sys, c, {90}}));  // two turns dropped
  EXPECT_EQ(p.keep, 3u);
  EXPECT_EQ(p.drop, 30u);
  EXPECT_EQ(p.len, 20u);
  p = plan_context_shift(cached, join({sys, {50, 51}}));  // nothing reappears
  EXPECT_EQ(p.len, 0u);
  p = plan_context_shift(cached, {1, 2});  // the prompt is a prefix: nothing to move
  EXPECT_EQ(p.keep, 2u);
  EXPECT_EQ(p.len, 0u);
  p = plan_context_shift({}, {1, 2});
  EXPECT_EQ(p.keep, 0u);
  EXPECT_EQ(p.len, 0u);
}

// A run shorter than kMinShiftRun is a chance match (an unrelated request in the same slot that
// shares a few tokens with the last one), not a kept turn: nothing moves, the prompt is
// recomputed. From kMinShiftRun tokens on it moves.
TEST(ContextShiftPlan, ShortRunsAreNotMoved) {
  const auto sys = run_of(1, 3), c = run_of(300, 20);
  const std::vector<int32_t> cached = join({sys, run_of(100, 10), c});
  const auto head = [&](size_t n) { return std::vector<int32_t>(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n)); };
  ShiftPlan p = plan_context_shift(cached, join({sys, head(1), {99}}));
  EXPECT_EQ(p.len, 0u);
  EXPECT_EQ(p.drop, 0u);
  p = plan_context_shift(cached, join({sys, head(kMinShiftRun - 1), {99}}));
  EXPECT_EQ(p.len, 0u);
  p = plan_context_shift(cached, join({sys, head(kMinShiftRun), {99}}));
  EXPECT_EQ(p.len, kMinShiftRun);
  EXPECT_EQ(p.drop, 10u);
}

}  // namespace
}  // namespace edgellm::runtime
