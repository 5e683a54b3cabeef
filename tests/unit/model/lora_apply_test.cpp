// LoRA application: the low-rank product against a double-precision scalar reference, the
// forward pass with adapters against the same model with the update merged into its weights
// (W + scale·B·A, computed here from the factors written), scale 0 against the base bit for bit,
// and per-token adapter sets: batching and mixing sequences with different adapters change nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "lora_builder.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/quantize.h"
#include "ops/ops.h"

namespace edgellm {
namespace {

using testing::AdapterBytes;
using testing::TinySpec;

std::shared_ptr<const model::LoraAdapter> load(const AdapterBytes& a, const model::Model& m) {
  auto f = a.open();
  return model::LoraAdapter::from_file(*f, m);
}

// Sets exact (fp32) activations for a test's duration.
struct ExactMode {
  bool was = ops::exact_activations();
  explicit ExactMode(bool on) { ops::set_exact_activations(on); }
  ~ExactMode() { ops::set_exact_activations(was); }
};

TEST(LoraApply, MatchesScalarReferencePerToken) {
  TinySpec s;
  auto tf = testing::make_tiny(s);
  auto m = model::Model::from_file(std::move(tf.file));
  // Two adapters on ffn_up of layer 1 (n_in 32, n_out 48), ranks 3 and 5; alpha 6 and 0.
  std::vector<testing::AdapterTensor> t1, t2;
  testing::add_pair(t1, "blk.1.ffn_up.weight", 32, 48, 3);
  testing::add_pair(t2, "blk.1.ffn_up.weight", 32, 48, 5, io::TensorType::F16, io::TensorType::F32);
  const auto a1 = testing::make_adapter("llama", 6.0f, t1, 11), a2 = testing::make_adapter("llama", 0.0f, t2, 12);
  const auto ad1 = load(a1, *m), ad2 = load(a2, *m);
  const model::LoraSet both{{{ad1, 0.7f}, {ad2, -0.4f}}}, second{{{ad2, 1.5f}}};
  // Tokens: both adapters, none, the second only, both again (4 tokens, parallel path too).
  const model::LoraSet* sets[] = {&both, nullptr, &second, &both};
  const int64_t n = 4, n_in = 32, n_out = 48;
  std::mt19937 rng(5);
  const auto x = testing::random_vec(rng, n * n_in, 1.0f);
  const auto y0 = testing::random_vec(rng, n * n_out, 1.0f);

  auto reference = [&](int64_t t) {
    std::vector<double> y(y0.begin() + t * n_out, y0.begin() + (t + 1) * n_out);
    if (!sets[t]) return y;
    for (const auto& e : sets[t]->entries) {
      const AdapterBytes& ab = e.adapter == ad1 ? a1 : a2;
      const auto& A = ab.values.at("blk.1.ffn_up.weight.lora_a");  // ggml [n_in, r]: r rows of n_in
      const auto& B = ab.values.at("blk.1.ffn_up.weight.lora_b");  // ggml [r, n_out]: n_out rows of r
      const int64_t r = static_cast<int64_t>(A.size()) / n_in;
      const double alpha = e.adapter == ad1 ? 6.0 : 0.0;
      const double sc = alpha != 0 ? e.scale * alpha / r : e.scale;
      for (int64_t o = 0; o < n_out; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < r; ++k) {
          double ax = 0;
          for (int64_t i = 0; i < n_in; ++i) ax += double(A[k * n_in + i]) * x[t * n_in + i];
          acc += double(B[o * r + k]) * ax;
        }
        y[o] += sc * acc;
      }
    }
    return y;
  };
  for (int threads : {1, 3}) {
    ops::ThreadPool pool(threads);
    std::vector<float> y = y0, scratch;
    model::apply_lora(sets, n, 1, model::LoraTarget::Up, x.data(), n_in, y.data(), n_out, pool, scratch);
    for (int64_t t = 0; t < n; ++t) {
      const auto want = reference(t);
      double max_diff = 0;
      for (int64_t o = 0; o < n_out; ++o) max_diff = std::max(max_diff, std::abs(y[t * n_out + o] - want[o]));
      EXPECT_LT(max_diff, 1e-5) << "token " << t << ", " << threads << " threads";
      if (!sets[t]) {
        EXPECT_EQ(0, std::memcmp(&y[t * n_out], &y0[t * n_out], n_out * sizeof(float)));
      }
    }
    // Another projection or layer: untouched.
    std::vector<float> z = y0;
    model::apply_lora(sets, n, 0, model::LoraTarget::Up, x.data(), n_in, z.data(), n_out, pool, scratch);
    EXPECT_EQ(z, y0);
  }
}

// The base file with W += scale·B·A for every adapted matrix, from the factors written.
std::vector<uint8_t> merged_bytes(const testing::TinyFile& base, const AdapterBytes& ad, float alpha, float scale) {
  std::vector<uint8_t> out = base.bytes;
  auto f = io::GgufFile::from_memory(base.bytes.data(), base.bytes.size(), "base.gguf");
  for (const auto& [name, A] : ad.values) {
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".lora_a") != 0) continue;
    const std::string w = name.substr(0, name.size() - 7);
    const auto& B = ad.values.at(w + ".lora_b");
    const io::TensorInfo* t = f->find_tensor(w);
    const int64_t n_in = t->ne[0], n_out = t->ne[1], r = static_cast<int64_t>(A.size()) / n_in;
    const double sc = alpha != 0 ? double(scale) * alpha / r : scale;
    float* W = reinterpret_cast<float*>(out.data() + (t->data - f->bytes()));
    for (int64_t o = 0; o < n_out; ++o)
      for (int64_t i = 0; i < n_in; ++i) {
        double d = 0;
        for (int64_t k = 0; k < r; ++k) d += double(B[o * r + k]) * A[k * n_in + i];
        W[o * n_in + i] = static_cast<float>(W[o * n_in + i] + sc * d);
      }
  }
  return out;
}

std::vector<float> logits(const model::Model& m, const std::vector<int>& toks, const model::LoraSet* set,
                          int chunk = 0) {
  const int v = m.config().n_vocab;
  model::KvCache kv(m.config(), 64);
  model::Workspace ws;
  ops::ThreadPool pool(2);
  std::vector<float> out(toks.size() * v);
  const size_t step = chunk > 0 ? static_cast<size_t>(chunk) : toks.size();
  for (size_t p = 0; p < toks.size(); p += step) {
    model::Batch b;
    for (size_t i = p; i < std::min(toks.size(), p + step); ++i) b.add(toks[i], static_cast<int32_t>(i), &kv, true, set);
    m.forward(b, ws, pool, &out[p * v]);
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

class LoraForward : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraForward, EqualsMergedWeightsScaleZeroEqualsBase) {
  ExactMode exact(true);
  TinySpec s;
  s.arch = GetParam();
  s.n_layer = s.arch == "gemma3" ? 6 : 2;
  s.tied = s.arch != "qwen2";
  auto tf = testing::make_tiny(s);
  auto m = model::Model::from_file(std::move(tf.file));
  const auto ad_bytes = testing::make_adapter(s.arch, 8.0f, testing::all_pairs(s, 4), 21);
  const auto ad = load(ad_bytes, *m);
  const float scale = 0.6f;
  const auto merged_file = merged_bytes(tf, ad_bytes, 8.0f, scale);
  auto merged = model::Model::from_file(io::GgufFile::from_memory(merged_file.data(), merged_file.size(), "m.gguf"));

  std::vector<int> toks;
  for (int i = 0; i < 13; ++i) toks.push_back((i * 7 + 3) % s.n_vocab);
  const model::LoraSet set{{{ad, scale}}}, zero{{{ad, 0.0f}}};
  const auto base = logits(*m, toks, nullptr);
  const auto with = logits(*m, toks, &set);
  const auto want = logits(*merged, toks, nullptr);
  EXPECT_GT(max_abs_diff(with, base), 0.1) << "the adapter must change the logits for this test to mean anything";
  EXPECT_LT(max_abs_diff(with, want), 2e-4) << "adapter vs merged weights";
  EXPECT_EQ(logits(*m, toks, &zero), base) << "scale 0 must give the base logits bit for bit";
  // Decode path (one token per pass) and chunks: the same logits, bit for bit.
  EXPECT_EQ(logits(*m, toks, &set, 1), with);
  EXPECT_EQ(logits(*m, toks, &set, 5), with);
}

INSTANTIATE_TEST_SUITE_P(Families, LoraForward, ::testing::Values("llama", "qwen2", "gemma3"));

TEST(LoraForwardMixed, SequencesWithDifferentAdaptersShareAPass) {
  // The default int8-activation mode: batch invariance is what makes sharing a pass safe.
  ExactMode exact(false);
  TinySpec s;
  s.n_embd = 64, s.head_dim = 16, s.n_ff = 96;
  auto tf = testing::make_tiny(s);
  // Q8_0 weights, so the matmuls take int8 activations as on real models.
  const auto dir = std::filesystem::temp_directory_path() / ("edgellm_lora_mixed_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "in.gguf").string(), q8 = (dir / "q8.gguf").string();
  {
    FILE* f = std::fopen(in.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(tf.bytes.data(), 1, tf.bytes.size(), f);
    std::fclose(f);
  }
  model::quantize_file(in, q8, model::parse_quant_target("Q8_0"));
  auto m = model::Model::load(q8);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(m->weights().layers[0].wq.type, io::TensorType::Q8_0);
  const auto a1 = load(testing::make_adapter("llama", 8.0f, testing::all_pairs(s, 4), 1), *m);
  const auto a2 = load(testing::make_adapter("llama", 16.0f, testing::all_pairs(s, 8), 2), *m);
  const model::LoraSet s1{{{a1, 1.0f}}}, s2{{{a1, 0.5f}, {a2, 0.25f}}};
  const int v = s.n_vocab;
  std::vector<int> t1 = {3, 9, 27, 1, 5, 8}, t2 = {4, 4, 30, 2, 11, 7};
  const auto want1 = logits(*m, t1, &s1, 1), want2 = logits(*m, t2, &s2, 1), want0 = logits(*m, t2, nullptr, 1);
  ASSERT_GT(max_abs_diff(want1, logits(*m, t1, nullptr, 1)), 0.1);

  // Three sequences decode together: adapter set 1, set 2, and the base; each pass holds one
  // token of each (continuous batching with per-request adapters).
  model::KvCache k1(m->config(), 16), k2(m->config(), 16), k0(m->config(), 16);
  model::Workspace ws;
  ops::ThreadPool pool(2);
  std::vector<float> out(3 * v);
  for (size_t p = 0; p < t1.size(); ++p) {
    model::Batch b;
    const int32_t pos = static_cast<int32_t>(p);
    b.add(t1[p], pos, &k1, true, &s1);
    b.add(t2[p], pos, &k2, true, &s2);
    b.add(t2[p], pos, &k0, true, nullptr);
    m->forward(b, ws, pool, out.data());
    EXPECT_EQ(0, std::memcmp(&out[0], &want1[p * v], v * sizeof(float))) << "set 1, position " << p;
    EXPECT_EQ(0, std::memcmp(&out[v], &want2[p * v], v * sizeof(float))) << "set 2, position " << p;
    EXPECT_EQ(0, std::memcmp(&out[2 * v], &want0[p * v], v * sizeof(float))) << "base, position " << p;
  }
}

TEST(LoraForwardMixed, AdapterForAnotherModelIsRefusedAtForward) {
  TinySpec s, other;
  other.n_ff = 64;
  auto tf = testing::make_tiny(s), tf2 = testing::make_tiny(other);
  auto m = model::Model::from_file(std::move(tf.file));
  auto m2 = model::Model::from_file(std::move(tf2.file));
  std::vector<testing::AdapterTensor> ts;
  testing::add_pair(ts, "blk.0.ffn_up.weight", 32, 64, 4);
  const auto ad = load(testing::make_adapter("llama", 8.0f, ts), *m2);
  const model::LoraSet set{{{ad, 1.0f}}};
  EXPECT_THROW(logits(*m, {1, 2}, &set), InvalidArgument);
  const model::LoraSet nan{{{ad, std::nanf("")}}};
  EXPECT_THROW(logits(*m2, {1, 2}, &nan), InvalidArgument);
}

}  // namespace
}  // namespace edgellm
