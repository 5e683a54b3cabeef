// BertModel (model/bert.h) on a tiny random-weight file built here: output shape and unit length,
// a sequence's vector independent of the others in its pass and of the pass split, CLS pooling
// taking the first token, bad input and bad files refused. Its numbers against NumPy are
// tests/python/test_embeddings_bert.py.
#include <gtest/gtest.h>

#include <cmath>

#include "model/bert.h"
#include "tiny_model.h"
#include "util/error.h"

namespace edgellm::model {
namespace {

constexpr int kLayers = 2, kEmbd = 32, kHeads = 4, kFf = 48, kVocab = 50, kCtx = 40;

template <typename Mutate>
testing::TinyFile tiny_bert(Mutate&& mutate) {
  io::GgufWriter w;
  std::mt19937 rng(7);
  w.set_string("general.architecture", "bert");
  w.set_u32("bert.block_count", kLayers);
  w.set_u32("bert.embedding_length", kEmbd);
  w.set_u32("bert.feed_forward_length", kFf);
  w.set_u32("bert.attention.head_count", kHeads);
  w.set_u32("bert.context_length", kCtx);
  w.set_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  w.set_bool("bert.attention.causal", false);
  w.set_u32("bert.pooling_type", 1);
  auto mat = [&](const std::string& n, int64_t in, int64_t out, float s) {
    testing::add_f32(w, n, {in, out}, testing::random_vec(rng, in * out, s));
  };
  auto vec = [&](const std::string& n, int64_t len, float off) {
    testing::add_f32(w, n, {len}, testing::random_vec(rng, len, 0.1f, off));
  };
  mat("token_embd.weight", kEmbd, kVocab, 0.5f);
  mat("token_types.weight", kEmbd, 2, 0.3f);
  mat("position_embd.weight", kEmbd, kCtx, 0.3f);
  vec("token_embd_norm.weight", kEmbd, 1.f);
  vec("token_embd_norm.bias", kEmbd, 0.f);
  for (int il = 0; il < kLayers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      mat(p + n + ".weight", kEmbd, kEmbd, 0.3f);
      vec(p + n + ".bias", kEmbd, 0.f);
    }
    vec(p + "attn_output_norm.weight", kEmbd, 1.f);
    vec(p + "attn_output_norm.bias", kEmbd, 0.f);
    mat(p + "ffn_up.weight", kEmbd, kFf, 0.3f);
    vec(p + "ffn_up.bias", kFf, 0.f);
    mat(p + "ffn_down.weight", kFf, kEmbd, 0.2f);
    vec(p + "ffn_down.bias", kEmbd, 0.f);
    vec(p + "layer_output_norm.weight", kEmbd, 1.f);
    vec(p + "layer_output_norm.bias", kEmbd, 0.f);
  }
  mutate(w);
  testing::TinyFile t;
  t.bytes = w.to_bytes();
  t.file = io::GgufFile::from_memory(t.bytes.data(), t.bytes.size(), "tiny-bert.gguf");
  return t;
}

testing::TinyFile tiny_bert() {
  return tiny_bert([](io::GgufWriter&) {});
}

std::vector<std::vector<int32_t>> some_sequences() {
  return {{2, 10, 11, 12, 3}, {2, 40, 3}, {2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 3}, {2, 3}, {2, 49, 48, 47, 3}};
}

TEST(Bert, VectorsHaveUnitLengthAndDiffer) {
  auto t = tiny_bert();
  auto m = BertModel::from_file(std::move(t.file));
  ops::ThreadPool pool(2);
  BertWorkspace ws;
  const auto seqs = some_sequences();
  std::vector<float> out(seqs.size() * kEmbd);
  m->embed(seqs, ws, pool, out.data());
  for (size_t s = 0; s < seqs.size(); ++s) {
    double norm = 0;
    for (int i = 0; i < kEmbd; ++i) norm += out[s * kEmbd + i] * out[s * kEmbd + i];
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  EXPECT_NE(out[0], out[kEmbd]);
}

TEST(Bert, ASequenceDoesNotDependOnItsNeighbours) {
  auto t = tiny_bert();
  auto m = BertModel::from_file(std::move(t.file));
  ops::ThreadPool pool(2);
  BertWorkspace ws;
  const auto seqs = some_sequences();
  std::vector<float> together(seqs.size() * kEmbd);
  m->embed(seqs, ws, pool, together.data());
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<float> alone(kEmbd);
    m->embed({seqs[s]}, ws, pool, alone.data());
    for (int i = 0; i < kEmbd; ++i) EXPECT_NEAR(alone[i], together[s * kEmbd + i], 1e-5) << "sequence " << s;
  }
  // Token order matters (positions): reversing the middle changes the vector.
  std::vector<float> rev(kEmbd);
  m->embed({{2, 12, 11, 10, 3}}, ws, pool, rev.data());
  float diff = 0;
  for (int i = 0; i < kEmbd; ++i) diff = std::max(diff, std::abs(rev[i] - together[i]));
  EXPECT_GT(diff, 1e-3f);
}

TEST(Bert, ManySequencesSplitIntoSeveralPasses) {
  auto t = tiny_bert();
  auto m = BertModel::from_file(std::move(t.file));
  ops::ThreadPool pool(2);
  BertWorkspace ws;
  std::vector<std::vector<int32_t>> seqs;
  const int64_t n = BertModel::max_batch_tokens() / kCtx * 3;  // ~3 passes of full-length sequences
  for (int64_t s = 0; s < n; ++s) {
    std::vector<int32_t> ids(kCtx);
    for (int i = 0; i < kCtx; ++i) ids[i] = static_cast<int32_t>((s * 7 + i) % kVocab);
    seqs.push_back(ids);
  }
  std::vector<float> all(seqs.size() * kEmbd), one(kEmbd);
  m->embed(seqs, ws, pool, all.data());
  for (int64_t s : {int64_t{0}, n / 2, n - 1}) {
    m->embed({seqs[s]}, ws, pool, one.data());
    for (int i = 0; i < kEmbd; ++i) EXPECT_NEAR(one[i], all[s * kEmbd + i], 1e-5);
  }
}

TEST(Bert, ClsPoolingTakesTheFirstToken) {
  auto mean_file = tiny_bert();
  auto cls_file = tiny_bert([](io::GgufWriter& w) { w.set_u32("bert.pooling_type", 2); });
  auto mean = BertModel::from_file(std::move(mean_file.file));
  auto cls = BertModel::from_file(std::move(cls_file.file));
  EXPECT_EQ(cls->config().pooling, BertPooling::Cls);
  ops::ThreadPool pool(1);
  BertWorkspace ws;
  std::vector<float> a(kEmbd), b(kEmbd), c(kEmbd);
  cls->embed({{2, 10, 11, 3}}, ws, pool, a.data());
  cls->embed({{2, 10, 11, 3, 3, 3}}, ws, pool, b.data());  // later tokens still attend: differs a bit
  mean->embed({{2, 10, 11, 3}}, ws, pool, c.data());
  float d_ab = 0, d_ac = 0;
  for (int i = 0; i < kEmbd; ++i) {
    d_ab = std::max(d_ab, std::abs(a[i] - b[i]));
    d_ac = std::max(d_ac, std::abs(a[i] - c[i]));
  }
  EXPECT_GT(d_ab, 0.f);
  EXPECT_GT(d_ac, 1e-3f);
}

TEST(Bert, BadInputIsRefused) {
  auto t = tiny_bert();
  auto m = BertModel::from_file(std::move(t.file));
  ops::ThreadPool pool(1);
  BertWorkspace ws;
  std::vector<float> out(2 * kEmbd);
  EXPECT_THROW(m->embed({{}}, ws, pool, out.data()), InvalidArgument);
  EXPECT_THROW(m->embed({{2, kVocab, 3}}, ws, pool, out.data()), InvalidArgument);
  EXPECT_THROW(m->embed({{2, -1, 3}}, ws, pool, out.data()), InvalidArgument);
  EXPECT_THROW(m->embed({std::vector<int32_t>(kCtx + 1, 5)}, ws, pool, out.data()), InvalidArgument);
  std::vector<int32_t> full(kCtx, 5);
  EXPECT_NO_THROW(m->embed({full}, ws, pool, out.data()));
}

TEST(Bert, BadFilesAreRefused) {
  auto expect_refused = [](auto mutate, const char* what) {
    auto t = tiny_bert(mutate);
    try {
      BertModel::from_file(std::move(t.file));
      ADD_FAILURE() << "accepted: " << what;
    } catch (const ModelFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_refused([](io::GgufWriter& w) { w.set_bool("bert.attention.causal", true); }, "causal");
  expect_refused([](io::GgufWriter& w) { w.set_u32("bert.pooling_type", 3); }, "pooling_type 3");
  expect_refused([](io::GgufWriter& w) { w.set_u32("bert.attention.head_count", 5); }, "multiple of head_count");
  expect_refused([](io::GgufWriter& w) { w.set_u32("bert.context_length", 41); }, "position_embd.weight");
  expect_refused([](io::GgufWriter& w) { w.set_string("general.architecture", "llama"); }, "not a BERT model");
  expect_refused([](io::GgufWriter& w) { w.remove("bert.block_count"); }, "bert.block_count");
}

}  // namespace
}  // namespace edgellm::model
