// Load-time checks of the family descriptions added for #16: the metadata and tensors each family
// reads, and clear errors for the values that cannot be run (unsupported rope scaling, malformed
// factor tensors, out-of-range windows). The forward passes are checked against the NumPy
// reference in tests/python/test_families.py.
#include <gtest/gtest.h>

#include <cmath>

#include "lora_builder.h"
#include "model/kv_shift.h"
#include "model/model.h"
#include "ops/thread_pool.h"
#include "tiny_model.h"

namespace edgellm {
namespace {

using testing::add_f32;
using testing::make_tiny;
using testing::TinySpec;

template <typename Mutate>
std::string load_error(const TinySpec& s, Mutate&& mutate) {
  auto tf = make_tiny(s, mutate);
  try {
    model::Model::from_file(std::move(tf.file));
  } catch (const ModelFormatError& e) {
    return e.what();
  }
  return "";
}

TEST(FamilyLoad, MistralWindowOnEveryLlamaLayer) {
  auto tf = make_tiny(TinySpec{}, [](io::GgufWriter& w) { w.set_u32("llama.attention.sliding_window", 4096); });
  auto m = model::Model::from_file(std::move(tf.file));
  EXPECT_EQ(m->config().sliding_window, 4096);
  for (int32_t il = 0; il < m->config().n_layer; ++il) EXPECT_TRUE(m->config().layer_swa[il]);
  auto plain = model::Model::from_file(make_tiny(TinySpec{}).file);
  EXPECT_EQ(plain->config().sliding_window, 0);
}

TEST(FamilyLoad, NegativeWindowIsRefused) {
  const std::string e = load_error(TinySpec{}, [](io::GgufWriter& w) {
    w.set_i32("llama.attention.sliding_window", -5);
  });
  EXPECT_NE(e.find("llama.attention.sliding_window"), std::string::npos) << e;
}

TEST(FamilyLoad, RopeFreqsTensorIsRead) {
  TinySpec s;  // head_dim 8: 4 pairs
  auto tf = make_tiny(s, [](io::GgufWriter& w) { add_f32(w, "rope_freqs.weight", {4}, {1.f, 2.f, 4.f, 8.f}); });
  auto m = model::Model::from_file(std::move(tf.file));
  EXPECT_EQ(m->config().rope_factors, (std::vector<float>{1.f, 2.f, 4.f, 8.f}));
}

TEST(FamilyLoad, MalformedRopeFreqsAreRefused) {
  std::string e = load_error(TinySpec{}, [](io::GgufWriter& w) { add_f32(w, "rope_freqs.weight", {3}, {1, 2, 3}); });
  EXPECT_NE(e.find("rope_freqs.weight"), std::string::npos) << e;
  e = load_error(TinySpec{}, [](io::GgufWriter& w) { add_f32(w, "rope_freqs.weight", {4}, {1, 0, 2, 3}); });
  EXPECT_NE(e.find("not a positive number"), std::string::npos) << e;
}

TEST(FamilyLoad, Llama3ScalingFromMetadata) {
  auto tf = make_tiny(TinySpec{}, [](io::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "llama3");
    w.set_f32("llama.rope.scaling.factor", 8.f);
    w.set_u32("llama.rope.scaling.original_context_length", 64);
  });
  auto m = model::Model::from_file(std::move(tf.file));
  const auto& f = m->config().rope_factors;
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f.front(), 1.f);  // the highest frequency is kept
  EXPECT_EQ(f.back(), 8.f);   // base 1e6: the lowest one's wavelength is far past 64 / low_freq_factor
  // Without its factor the type is refused by name.
  const std::string e = load_error(TinySpec{}, [](io::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "llama3");
    w.set_u32("llama.rope.scaling.original_context_length", 64);
  });
  EXPECT_NE(e.find("llama.rope.scaling.factor"), std::string::npos) << e;
}

TEST(FamilyLoad, UnsupportedRopeScalingIsNamed) {
  const std::string e = load_error(TinySpec{}, [](io::GgufWriter& w) {
    w.set_string("llama.rope.scaling.type", "yarn");
    w.set_f32("llama.rope.scaling.factor", 4.f);
  });
  EXPECT_NE(e.find("'yarn' is not supported"), std::string::npos) << e;
}

template <typename Mutate>
testing::TinyFile tiny_gemma2(int n_layer, Mutate&& mutate) {
  TinySpec s;
  s.arch = "gemma2";
  s.n_layer = n_layer;
  return make_tiny(s, mutate);
}

TEST(FamilyLoad, Gemma2DefaultsAndPatterns) {
  auto m = model::Model::from_file(tiny_gemma2(4, [](io::GgufWriter&) {}).file);
  const model::ModelConfig& c = m->config();
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.layer_swa, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(c.attn_softcap, 50.f);
  EXPECT_EQ(c.final_softcap, 30.f);
  EXPECT_FLOAT_EQ(c.attn_scale, 1.f / std::sqrt(8.f));  // head_dim (2B/9B's query_pre_attn_scalar)
  EXPECT_TRUE(c.post_attn_norm && c.post_ffn_norm && !c.qk_norm);
  auto p3 = model::Model::from_file(tiny_gemma2(4, [](io::GgufWriter& w) {
    w.set_u32("gemma2.attention.sliding_window_pattern", 3);
  }).file);
  EXPECT_EQ(p3->config().layer_swa, (std::vector<bool>{true, true, false, true}));
  auto flags = model::Model::from_file(tiny_gemma2(4, [](io::GgufWriter& w) {
    w.set_int_array("gemma2.attention.sliding_window_pattern", io::ValueType::BOOL, {0, 1, 1, 0});
  }).file);
  EXPECT_EQ(flags->config().layer_swa, (std::vector<bool>{false, true, true, false}));
}

TEST(FamilyLoad, Gemma2MalformedPatternIsRefused) {
  try {
    model::Model::from_file(tiny_gemma2(4, [](io::GgufWriter& w) {
      w.set_int_array("gemma2.attention.sliding_window_pattern", io::ValueType::BOOL, {0, 1});
    }).file);
    FAIL() << "expected an error";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("one BOOL per layer"), std::string::npos) << e.what();
  }
}

TEST(FamilyLoad, Phi3LongRopeFactorsByContext) {
  TinySpec s;  // separate q/k/v and gate/up matrices load for phi3 too
  s.arch = "phi3";
  auto tf = make_tiny(s, [](io::GgufWriter& w) {
    add_f32(w, "rope_factors_short.weight", {4}, {1, 1, 1, 2});
    add_f32(w, "rope_factors_long.weight", {4}, {1, 2, 4, 8});
    w.set_u32("phi3.rope.scaling.original_context_length", 64);
    w.set_f32("phi3.rope.scaling.attn_factor", 1.25f);
  });
  auto m = model::Model::from_file(std::move(tf.file));
  const model::ModelConfig& c = m->config();
  EXPECT_TRUE(c.rope_neox && !c.fused_qkv && !c.fused_gate_up);
  EXPECT_EQ(c.rope_factors_for(64)[3], 2.f);  // within the original context: short
  EXPECT_EQ(c.rope_factors_for(65)[3], 8.f);  // beyond it: long
  EXPECT_EQ(c.rope_attn_factor, 1.25f);
}

TEST(FamilyLoad, Phi3FusedMatricesAreRowViews) {
  TinySpec s;
  s.arch = "phi3";
  s.fused = true;
  auto tf = make_tiny(s);
  const io::GgufFile& f = *tf.file;
  const auto* qkv = static_cast<const uint8_t*>(f.find_tensor("blk.1.attn_qkv.weight")->data);
  const auto* up = static_cast<const uint8_t*>(f.find_tensor("blk.1.ffn_up.weight")->data);
  auto m = model::Model::from_file(std::move(tf.file));
  ASSERT_TRUE(m->config().fused_qkv && m->config().fused_gate_up);
  const model::LayerWeights& l = m->weights().layers[1];
  const size_t row = 32 * sizeof(float);  // F32 rows of n_embd = 32
  EXPECT_EQ(l.wq.n_out, 32);
  EXPECT_EQ(l.wk.n_out, 16);
  EXPECT_EQ(l.wv.n_out, 16);
  EXPECT_EQ(l.wq.data, qkv);
  EXPECT_EQ(l.wk.data, qkv + 32 * row);
  EXPECT_EQ(l.wv.data, qkv + 48 * row);
  EXPECT_EQ(l.w_gate.data, up);
  EXPECT_EQ(l.w_up.data, up + 48 * row);
  EXPECT_EQ(l.w_up.n_out, 48);
  // LoRA on the fused gate+up matrix cannot be split between the two views: refused.
  std::vector<testing::AdapterTensor> ts;
  testing::add_pair(ts, "blk.0.ffn_up.weight", 32, 96, 4);
  auto ad = testing::make_adapter("phi3", 8.0f, ts);
  auto af = ad.open();
  try {
    model::LoraAdapter::from_file(*af, *m);
    FAIL() << "expected an error";
  } catch (const model::LoraFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("fused FFN gate and up"), std::string::npos) << e.what();
  }
}

TEST(FamilyLoad, LongRopeNeedsBothTables) {
  TinySpec s;
  s.arch = "phi3";
  const std::string e = load_error(s, [](io::GgufWriter& w) { add_f32(w, "rope_factors_long.weight", {4}, {1, 2, 4, 8}); });
  EXPECT_NE(e.find("rope_factors_short.weight"), std::string::npos) << e;
}

TEST(FamilyLoad, MiniCpmScales) {
  TinySpec s;
  s.arch = "minicpm";
  auto m = model::Model::from_file(make_tiny(s).file);  // no keys: MiniCPM-2B's values
  EXPECT_EQ(m->config().embd_scale, 12.f);
  EXPECT_FLOAT_EQ(m->config().residual_scale, 1.4f / std::sqrt(2.f));
  EXPECT_FLOAT_EQ(m->config().logit_scale, 32.f / 256.f);
  EXPECT_FALSE(m->config().rope_neox);
  auto named = model::Model::from_file(make_tiny(s, [](io::GgufWriter& w) {
    w.set_f32("minicpm.embedding_scale", 3.f);
    w.set_f32("minicpm.residual_scale", 0.5f);
    w.set_f32("minicpm.logit_scale", 9.f);
  }).file);
  EXPECT_EQ(named->config().embd_scale, 3.f);
  EXPECT_EQ(named->config().residual_scale, 0.5f);
  EXPECT_EQ(named->config().logit_scale, 9.f);
  const std::string e = load_error(s, [](io::GgufWriter& w) { w.set_f32("minicpm.logit_scale", -1.f); });
  EXPECT_NE(e.find("minicpm.logit_scale"), std::string::npos) << e;
}

// The context shift re-rotates keys with the forward pass's frequency divisors (and without its
// cos/sin attention factor): layer 0's moved keys equal those computed at the new positions.
TEST(FamilyLoad, ContextShiftUsesTheRopeFactors) {
  auto tf = make_tiny(TinySpec{}, [](io::GgufWriter& w) {
    add_f32(w, "rope_freqs.weight", {4}, {1.f, 3.f, 9.f, 27.f});
    w.set_f32("llama.rope.scaling.attn_factor", 1.3f);
  });
  auto m = model::Model::from_file(std::move(tf.file));
  ops::ThreadPool pool(1);
  model::Workspace ws;
  const std::vector<int32_t> head = {1, 2, 3}, span = {4, 5, 6, 7, 8}, tail = {9, 10, 11, 12};
  auto prefill = [&](model::KvCache& kv, const std::vector<std::vector<int32_t>>& parts) {
    model::Batch b;
    for (const auto& part : parts)
      for (int32_t t : part) b.add(t, static_cast<int32_t>(b.size()), &kv, false);
    m->forward(b, ws, pool, nullptr);
  };
  model::KvCache a(m->config(), 32), want(m->config(), 32);
  prefill(a, {head, span, tail});
  model::shift_kv_cache(m->config(), a, 3, 5);
  prefill(want, {head, tail});
  ASSERT_EQ(a.size(), want.size());
  const int32_t kvd = m->config().kv_dim();
  std::vector<float> got(static_cast<size_t>(kvd)), ref(got.size());
  for (int32_t p = 3; p < want.size(); ++p) {
    a.read_k(0, p, reinterpret_cast<uint8_t*>(got.data()));
    want.read_k(0, p, reinterpret_cast<uint8_t*>(ref.data()));
    for (int32_t i = 0; i < kvd; ++i) EXPECT_NEAR(got[i], ref[i], 1e-4f) << "position " << p << " element " << i;
  }
}

}  // namespace
}  // namespace edgellm
