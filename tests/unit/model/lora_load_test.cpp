// LoRA adapter loading: what a valid file yields, and a clear LoraFormatError (never a crash)
// for each way an adapter can be wrong or hostile.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "lora_builder.h"
#include "model/lora.h"
#include "model/model.h"

namespace edgellm {
namespace {

using io::TensorType;
using testing::add_pair;
using testing::AdapterTensor;
using testing::make_adapter;

struct Base {
  testing::TinySpec spec;
  testing::TinyFile tiny;
  std::unique_ptr<model::Model> model;
  explicit Base(const std::string& arch = "llama") {
    spec.arch = arch;
    tiny = testing::make_tiny(spec);
    model = model::Model::from_file(std::move(tiny.file));
  }
};

std::shared_ptr<const model::LoraAdapter> load(const testing::AdapterBytes& a, const model::Model& m) {
  auto f = a.open();
  return model::LoraAdapter::from_file(*f, m);
}

TEST(LoraLoad, ValidAdapterReportsItsShape) {
  Base b;
  std::vector<AdapterTensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 32, 32, 4);
  add_pair(ts, "blk.1.ffn_down.weight", 48, 32, 8, TensorType::F16, TensorType::F16);
  add_pair(ts, "blk.1.ffn_up.weight", 32, 48, 32, TensorType::Q8_0, TensorType::Q8_0);  // Q8_0 rows need 32
  auto ad = load(make_adapter("llama", 16.0f, ts), *b.model);
  const auto& in = ad->info();
  EXPECT_EQ(in.n_pairs, 3);
  EXPECT_EQ(in.rank_min, 4);
  EXPECT_EQ(in.rank_max, 32);
  EXPECT_FLOAT_EQ(in.alpha, 16.0f);
  ASSERT_NE(ad->pair(0, model::LoraTarget::Q), nullptr);
  EXPECT_EQ(ad->pair(0, model::LoraTarget::K), nullptr);
  EXPECT_EQ(ad->pair(1, model::LoraTarget::Down)->rank, 8);
  EXPECT_EQ(ad->pair(1, model::LoraTarget::Down)->n_in, 48);
  EXPECT_FLOAT_EQ(ad->scale(*ad->pair(0, model::LoraTarget::Q), 0.5f), 0.5f * 16.0f / 4.0f);
  EXPECT_TRUE(ad->fits(b.model->config()));
  EXPECT_EQ(ad->bytes(), sizeof(float) * (4 * (32 + 32) + 8 * (48 + 32) + 32 * (32 + 48)));
}

TEST(LoraLoad, ZeroAlphaMeansTheUserScaleAlone) {
  Base b;
  std::vector<AdapterTensor> ts;
  add_pair(ts, "blk.0.attn_v.weight", 32, 16, 4);
  auto ad = load(make_adapter("llama", 0.0f, ts), *b.model);
  EXPECT_FLOAT_EQ(ad->scale(*ad->pair(0, model::LoraTarget::V), 0.75f), 0.75f);
}

TEST(LoraLoad, NormVectorsAreSkippedAndListed) {
  Base b;
  std::vector<AdapterTensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 32, 32, 4);
  ts.push_back({"blk.0.attn_norm.weight", {32}});
  auto ad = load(make_adapter("llama", 8.0f, ts), *b.model);
  ASSERT_EQ(ad->info().ignored.size(), 1u);
  EXPECT_EQ(ad->info().ignored[0], "blk.0.attn_norm.weight");
}

struct BadCase {
  const char* what;
  std::vector<AdapterTensor> tensors;
  std::function<void(io::GgufWriter&)> meta;
  const char* message;  // a substring the error must contain
  std::string arch = "llama";
};

std::vector<AdapterTensor> pair(const std::string& base, int64_t n_in, int64_t n_out, int64_t r,
                                TensorType ta = TensorType::F32, TensorType tb = TensorType::F32) {
  std::vector<AdapterTensor> ts;
  add_pair(ts, base, n_in, n_out, r, ta, tb);
  return ts;
}

TEST(LoraLoad, BadAdaptersAreRefusedWithTheReason) {
  Base b;
  const auto q = pair("blk.0.attn_q.weight", 32, 32, 4);
  std::vector<BadCase> cases = {
      {"a model, not an adapter", q, [](io::GgufWriter& w) { w.remove("general.type"); }, "not a LoRA adapter"},
      {"general.type model", q, [](io::GgufWriter& w) { w.set_string("general.type", "model"); }, "-m, not --lora"},
      {"control vector", q, [](io::GgufWriter& w) { w.set_string("adapter.type", "control_vector"); },
       "only 'lora'"},
      {"no adapter.type", q, [](io::GgufWriter& w) { w.remove("adapter.type"); }, "adapter.type is missing"},
      {"activated LoRA", q,
       [](io::GgufWriter& w) { w.set_int_array("adapter.alora.invocation_tokens", io::ValueType::UINT32, {1, 2}); },
       "activated LoRA"},
      {"alpha NaN", q,
       [](io::GgufWriter& w) { w.set_f32("adapter.lora.alpha", std::numeric_limits<float>::quiet_NaN()); },
       "not a finite number"},
      {"another architecture", q, {}, "architecture 'qwen2', the model is 'llama'", "qwen2"},
      {"no pairs", {{"blk.0.attn_norm.weight", {32}}}, {}, "no lora_a / lora_b tensor pairs"},
      {"unexpected tensor", {{"blk.0.attn_q.weight", {32, 32}}}, {}, "unexpected tensor 'blk.0.attn_q.weight'"},
      {"lora_a alone", {{"blk.0.attn_q.weight.lora_a", {32, 4}}}, {}, "lora_a but no lora_b"},
      {"lora_b alone", {{"blk.0.attn_q.weight.lora_b", {4, 32}}}, {}, "lora_b but no lora_a"},
      {"rank mismatch",
       {{"blk.0.attn_q.weight.lora_a", {32, 4}}, {"blk.0.attn_q.weight.lora_b", {8, 32}}},
       {},
       "rank mismatch for 'blk.0.attn_q.weight'"},
      {"lora_a transposed (old finetune layout)",
       {{"blk.0.attn_q.weight.lora_a", {4, 32}}, {"blk.0.attn_q.weight.lora_b", {4, 32}}},
       {},
       "rank mismatch"},
      {"wrong n_in", pair("blk.0.attn_k.weight", 48, 16, 4), {}, "wrong shape for 'blk.0.attn_k.weight' [32, 16]"},
      {"wrong n_out", pair("blk.0.ffn_gate.weight", 32, 32, 4), {}, "wrong shape for 'blk.0.ffn_gate.weight'"},
      {"3-D factor",
       {{"blk.0.attn_q.weight.lora_a", {32, 4, 2}}, {"blk.0.attn_q.weight.lora_b", {4, 32}}},
       {},
       "expected 2-D"},
      {"1-D factor", {{"blk.0.attn_q.weight.lora_a", {32}}, {"blk.0.attn_q.weight.lora_b", {4, 32}}}, {},
       "expected 2-D"},
      {"quantized factor type", pair("blk.0.attn_q.weight", 32, 32, 32, TensorType::Q4_0), {},
       "must be F32, F16, BF16 or Q8_0"},
      {"unknown base tensor", pair("blk.0.attn_qkv.weight", 32, 96, 4), {}, "does not exist in the base model"},
      {"layer past the model", pair("blk.7.attn_q.weight", 32, 32, 4), {}, "does not exist in the base model"},
      {"embedding (not adapted)", pair("token_embd.weight", 32, 40, 4), {}, "LoRA on 'token_embd.weight' is not supported"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.what);
    const auto a = make_adapter(c.arch, 16.0f, c.tensors, 7, c.meta);
    try {
      load(a, *b.model);
      ADD_FAILURE() << "loaded";
    } catch (const model::LoraFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("adapter.gguf"), std::string::npos) << "names the file: " << e.what();
    }
  }
}

// Truncated and byte-flipped files: an edgellm::Error (the GGUF reader's or the adapter's), or a
// valid adapter when the flip hit the tensor data; never a crash or an unchecked read.
TEST(LoraLoad, TruncatedAndCorruptFilesFailCleanly) {
  Base b;
  std::vector<AdapterTensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 32, 32, 4);
  add_pair(ts, "blk.1.ffn_down.weight", 48, 32, 4, TensorType::F16, TensorType::F16);
  const auto good = make_adapter("llama", 16.0f, ts);
  for (size_t cut : {size_t{0}, size_t{3}, size_t{24}, good.bytes.size() / 3, good.bytes.size() / 2,
                     good.bytes.size() - 1}) {
    std::vector<uint8_t> bytes(good.bytes.begin(), good.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_THROW(io::GgufFile::from_memory(bytes.data(), bytes.size(), "cut.gguf"), ModelFormatError) << cut;
  }
  std::mt19937 rng(3);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::vector<uint8_t> bytes = good.bytes;
    const size_t at = rng() % bytes.size();
    bytes[at] = static_cast<uint8_t>(rng());
    try {
      auto f = io::GgufFile::from_memory(bytes.data(), bytes.size(), "flipped.gguf");
      model::LoraAdapter::from_file(*f, *b.model);
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_EQ(loaded + refused, 400);
  EXPECT_GT(refused, 0);
}

TEST(LoraLoad, MissingFileIsAnError) {
  Base b;
  EXPECT_THROW(model::LoraAdapter::load("/nonexistent/adapter.gguf", *b.model), Error);
}

TEST(LoraLoad, LoadsFromDiskAndKeepsNoMapping) {
  Base b;
  std::vector<AdapterTensor> ts;
  add_pair(ts, "blk.0.attn_q.weight", 32, 32, 4);
  const auto a = make_adapter("llama", 16.0f, ts);
  const auto path = std::filesystem::temp_directory_path() / ("edgellm_lora_" + std::to_string(::getpid()) + ".gguf");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(a.bytes.data(), 1, a.bytes.size(), f);
    std::fclose(f);
  }
  auto ad = model::LoraAdapter::load(path.string(), *b.model);
  std::filesystem::remove(path);  // the factors were copied: the adapter outlives its file
  EXPECT_EQ(ad->path(), path.string());
  const auto* p = ad->pair(0, model::LoraTarget::Q);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->a[5], a.values.at("blk.0.attn_q.weight.lora_a")[5]);
}

}  // namespace
}  // namespace edgellm
