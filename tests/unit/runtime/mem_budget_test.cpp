// runtime::choose_memory (the --mem-budget chooser) as a pure function, parse_mem_size, and
// estimate_weights against what model::load_weights really repacks.
#include "runtime/mem_budget.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "model/model.h"
#include "model_cache.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

using io::TensorType;
constexpr uint64_t MiB = 1024 * 1024;

// KV candidates as the CLI builds them: f32, f16, q8_0 with per-token sizes 4:2:1.0625.
BudgetRequest request(uint64_t budget, uint64_t fixed, int32_t ctx, int32_t slots = 1) {
  BudgetRequest r;
  r.budget = budget;
  r.fixed = fixed;
  r.n_ctx_max = ctx;
  r.n_slots_max = slots;
  r.kv_candidates = {{{TensorType::F32, TensorType::F32}, 4096},
                     {{TensorType::F16, TensorType::F16}, 2048},
                     {{TensorType::Q8_0, TensorType::Q8_0}, 1088}};
  return r;
}

TEST(ChooseMemory, EverythingFitsKeepsF32AndTheFullContext) {
  const BudgetChoice c = choose_memory(request(1024 * MiB, 300 * MiB, 4096));
  EXPECT_EQ(c.n_ctx, 4096);
  EXPECT_EQ(c.n_slots, 1);
  EXPECT_EQ(c.kv_types.k, TensorType::F32);
  EXPECT_EQ(c.kv_bytes, 4096ull * 4096);
  EXPECT_EQ(c.total, 300 * MiB + c.kv_bytes);
}

TEST(ChooseMemory, ExactFitIsAFit) {
  const BudgetChoice c = choose_memory(request(100 * MiB + 4096ull * 4096, 100 * MiB, 4096));
  EXPECT_EQ(c.kv_types.k, TensorType::F32);
  EXPECT_EQ(c.total, 100 * MiB + 4096ull * 4096);
}

TEST(ChooseMemory, SmallerKvTypeBeforeShorterContext) {
  // f32 needs 16 MiB for 4096 tokens, f16 8 MiB, q8_0 4.25 MiB.
  BudgetChoice c = choose_memory(request(100 * MiB + 10 * MiB, 100 * MiB, 4096));
  EXPECT_EQ(c.kv_types.k, TensorType::F16);
  EXPECT_EQ(c.kv_types.v, TensorType::F16);
  EXPECT_EQ(c.n_ctx, 4096);
  c = choose_memory(request(100 * MiB + 5 * MiB, 100 * MiB, 4096));
  EXPECT_EQ(c.kv_types.k, TensorType::Q8_0);
  EXPECT_EQ(c.n_ctx, 4096);
}

TEST(ChooseMemory, ShorterContextWithTheMostCompactTypeWhenNoTypeFitsTheFullOne) {
  // 2 MiB for the cache: q8_0 holds 1927 tokens -> 1792 (a multiple of 256).
  const BudgetChoice c = choose_memory(request(100 * MiB + 2 * MiB, 100 * MiB, 4096));
  EXPECT_EQ(c.kv_types.k, TensorType::Q8_0);
  EXPECT_EQ(c.n_ctx, 1792);
  EXPECT_LE(c.total, 102 * MiB);
}

TEST(ChooseMemory, MinimumContextIsHonoured) {
  // q8_0 at 512 tokens needs 544 KiB; 600 KiB fits it (rounding down to 256 would give 512 anyway).
  BudgetChoice c = choose_memory(request(100 * MiB + 600 * 1024, 100 * MiB, 4096));
  EXPECT_EQ(c.n_ctx, 512);
  // A requested context below the minimum is the minimum.
  c = choose_memory(request(100 * MiB + 300 * 1024, 100 * MiB, 256));
  EXPECT_EQ(c.n_ctx, 256);
  EXPECT_EQ(c.kv_types.k, TensorType::Q8_0);
}

TEST(ChooseMemory, RefusesNamingBudgetWeightsAndMinimum) {
  try {
    choose_memory(request(100 * MiB + 500 * 1024, 100 * MiB, 4096));
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("budget 100.5 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("take 100.0 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("512 tokens"), std::string::npos) << m;
    EXPECT_NE(m.find("100.5 MiB at least"), std::string::npos) << m;  // 100 MiB + 544 KiB
  }
  // Weights alone larger than the budget.
  EXPECT_THROW(choose_memory(request(50 * MiB, 100 * MiB, 4096)), InvalidArgument);
}

TEST(ChooseMemory, ExplicitTypesAreNeverChanged) {
  BudgetRequest r = request(100 * MiB + 2 * MiB, 100 * MiB, 4096);
  r.kv_candidates = {{{TensorType::F32, TensorType::F16}, 3072}};
  const BudgetChoice c = choose_memory(r);
  EXPECT_EQ(c.kv_types.k, TensorType::F32);
  EXPECT_EQ(c.kv_types.v, TensorType::F16);
  EXPECT_EQ(c.n_ctx, 512);  // 2 MiB / 3072 = 682 tokens -> 512
  r.budget = 100 * MiB + 1 * MiB;
  EXPECT_THROW(choose_memory(r), InvalidArgument);  // 512 x 3072 = 1.5 MiB
}

TEST(ChooseMemory, SlotsShrinkBeforeTheContext) {
  // 4 slots x 4096 q8_0 = 17 MiB; 3 slots = 12.75 MiB; budget for KV 13 MiB -> 3 slots q8_0.
  BudgetChoice c = choose_memory(request(100 * MiB + 13 * MiB, 100 * MiB, 4096, 4));
  EXPECT_EQ(c.n_slots, 3);
  EXPECT_EQ(c.n_ctx, 4096);
  EXPECT_EQ(c.kv_types.k, TensorType::Q8_0);
  // 4 slots in f16 fit 32 MiB; f32 would need 64.
  c = choose_memory(request(100 * MiB + 40 * MiB, 100 * MiB, 4096, 4));
  EXPECT_EQ(c.n_slots, 4);
  EXPECT_EQ(c.kv_types.k, TensorType::F16);
  // Room for less than one full slot: one slot, shorter context.
  c = choose_memory(request(100 * MiB + 3 * MiB, 100 * MiB, 4096, 4));
  EXPECT_EQ(c.n_slots, 1);
  EXPECT_EQ(c.n_ctx, 2816);  // 3 MiB / 1088 = 2891 -> 2816
  EXPECT_EQ(c.kv_bytes, 2816ull * 1088);
}

TEST(ChooseMemory, ResultAlwaysWithinBudget) {
  for (uint64_t kv_room = 544 * 1024; kv_room < 80 * MiB; kv_room = kv_room * 5 / 4)
    for (int32_t slots : {1, 2, 4})
      for (int32_t ctx : {512, 2048, 4096, 8192}) {
        const BudgetChoice c = choose_memory(request(100 * MiB + kv_room, 100 * MiB, ctx, slots));
        EXPECT_LE(c.total, 100 * MiB + kv_room);
        EXPECT_EQ(c.total, 100 * MiB + c.kv_bytes);
        EXPECT_GE(c.n_ctx, 512);
        EXPECT_LE(c.n_ctx, ctx);
        EXPECT_GE(c.n_slots, 1);
        EXPECT_LE(c.n_slots, slots);
      }
}

TEST(ChooseMemory, BadRequests) {
  BudgetRequest r = request(MiB, 0, 4096);
  r.kv_candidates.clear();
  EXPECT_THROW(choose_memory(r), InvalidArgument);
  EXPECT_THROW(choose_memory(request(MiB, 0, 0)), InvalidArgument);
  EXPECT_THROW(choose_memory(request(MiB, 0, 512, 0)), InvalidArgument);
}

TEST(ParseMemSize, UnitsBytesAndFractions) {
  const uint64_t ram = 8ull << 30;
  EXPECT_EQ(parse_mem_size("1.5G", ram), 3ull << 29);
  EXPECT_EQ(parse_mem_size("800M", ram), 800 * MiB);
  EXPECT_EQ(parse_mem_size("800MB", ram), 800 * MiB);
  EXPECT_EQ(parse_mem_size("2GiB", ram), 2ull << 30);
  EXPECT_EQ(parse_mem_size("512k", ram), 512ull * 1024);
  EXPECT_EQ(parse_mem_size("1000000", ram), 1000000ull);
  EXPECT_EQ(parse_mem_size("0.5", ram), 4ull << 30);
  EXPECT_EQ(parse_mem_size("1", ram), ram);
  for (const char* bad : {"", "G", "-1G", "0", "1.5X", "abc", "1e30", "nan", "0.5", "1G2"})
    EXPECT_THROW(parse_mem_size(bad, std::string(bad) == "0.5" ? 0 : ram), InvalidArgument) << bad;
}

TEST(FormatBytes, Units) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(100 * MiB), "100.0 MiB");
  EXPECT_EQ(format_bytes(3ull << 29), "1.50 GiB");
}

// The estimate repacks exactly the matrices load_weights repacks (same count), and the file's
// bytes split into what is read in place, what is copied and what becomes fp32.
TEST(EstimateWeights, MatchesWhatLoadRepacks) {
  auto engine = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!engine) GTEST_SKIP() << "SmolLM2 not cached";
  const model::Model& m = engine->model();
  const WeightMemory w = estimate_weights(m.file(), m.config());
  const model::Weights& lw = m.weights();
  int repacked = 0;
  auto count = [&](const ops::MatrixView& v) { repacked += v.layout != ops::Layout::Rows; };
  count(lw.output);
  for (const auto& l : lw.layers)
    for (const auto* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) count(*v);
  EXPECT_EQ(w.n_repacked, repacked);
  EXPECT_EQ(static_cast<size_t>(w.n_repacked), lw.repacked.allocations());
  uint64_t vec = 0, file = 0;
  for (const auto& t : m.file().tensors()) file += t.nbytes;
  EXPECT_EQ(w.file_bytes, file);
  vec += lw.output_norm.size() * 4;
  for (const auto& l : lw.layers) vec += (l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() +
                                           l.bv.size() + l.q_norm.size() + l.k_norm.size() +
                                           l.post_attn_norm.size() + l.post_ffn_norm.size()) * 4;
  EXPECT_EQ(w.vectors, vec);
  EXPECT_EQ(w.resident(), w.mapped + w.repacked + w.vectors);
  int named = 0;
  for (const auto& [name, n] : w.repacked_names) named += n;
  EXPECT_EQ(named, w.n_repacked);
  // SmolLM2 ties its output head to the embedding: the head is the embedding's repacked copy.
  EXPECT_TRUE(lw.tied_output);
  if (lw.output.layout != ops::Layout::Rows) {
    EXPECT_NE(std::find(w.repacked_names.begin(), w.repacked_names.end(),
                        std::pair<std::string, int32_t>{"token_embd.weight", 1}),
              w.repacked_names.end());
  }
}

}  // namespace
}  // namespace edgellm::runtime
