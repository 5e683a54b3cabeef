// edgellm quantize: type choice rules and an end-to-end conversion whose logits stay close to
// the fp32 original.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "model/model.h"
#include "model/quantize.h"
#include "ops/ops.h"
#include "tiny_model.h"

namespace edgellm {
namespace {

using io::TensorType;

TEST(QuantizeTypes, FileTypeNamesFollowLlamaCppNumbering) {
  EXPECT_EQ(model::file_type_name(15), "Q4_K_M");  // what users download
  EXPECT_EQ(model::file_type_name(3), "Q4_1");
  EXPECT_EQ(model::file_type_name(12), "Q3_K_M");  // read, never written
  EXPECT_EQ(model::file_type_name(0), "F32");
  EXPECT_EQ(model::file_type_name(999), "");
  EXPECT_EQ(model::file_type_name(-1), "");
}

TEST(QuantizeTypes, ParsesNamesAndRejectsUnknown) {
  EXPECT_EQ(model::parse_quant_target("q4_k_m").base, TensorType::Q4_K);
  EXPECT_TRUE(model::parse_quant_target("Q4_K_M").mixture_m);
  EXPECT_EQ(model::parse_quant_target("Q8_0").file_type, 7u);
  try {
    model::parse_quant_target("Q3_XS");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("valid: "), std::string::npos);
  }
}

TEST(QuantizeTypes, FallsBackWhenRowsDoNotFitTheBlock) {
  const auto k = model::parse_quant_target("Q4_K_M");
  // 576 is not a multiple of 256: K-quants fall back like llama.cpp.
  EXPECT_EQ(model::choose_type(k, "blk.5.attn_q.weight", 576, 5, 30, false), TensorType::Q5_0);
  EXPECT_EQ(model::choose_type(k, "blk.5.ffn_down.weight", 1536, 5, 30, false), TensorType::Q6_K);  // more bits
  EXPECT_EQ(model::choose_type(k, "blk.6.ffn_down.weight", 1536, 6, 30, false), TensorType::Q4_K);
  EXPECT_EQ(model::choose_type(k, "token_embd.weight", 576, -1, 30, true), TensorType::Q8_0);
  EXPECT_EQ(model::choose_type(k, "output.weight", 1024, -1, 30, true), TensorType::Q6_K);
  const auto q4 = model::parse_quant_target("Q4_0");
  EXPECT_EQ(model::choose_type(q4, "blk.0.attn_q.weight", 576, 0, 30, false), TensorType::Q4_0);
  EXPECT_EQ(model::choose_type(q4, "blk.0.attn_q.weight", 40, 0, 30, false), TensorType::F16);
}

// Converts a tiny fp32 model and checks every tensor: the type the rules pick, and the RMS error
// of the dequantized weights relative to the originals under a bound for that type (a 4-bit
// format keeps about 1/16 of a block's range per step; 8-bit about 1/256).
class QuantizeRoundTrip : public ::testing::TestWithParam<std::pair<const char*, double>> {};

TEST_P(QuantizeRoundTrip, WeightsStayWithinTheFormatsError) {
  const auto [type, rel_rms_bound] = GetParam();
  testing::TinySpec s;
  s.n_embd = 64;
  s.n_ff = 96;
  s.tied = false;
  auto tf = testing::make_tiny(s);
  const auto dir = std::filesystem::temp_directory_path() / ("edgellm_quant_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "in.gguf").string(), out = (dir / (std::string(type) + ".gguf")).string();
  {
    FILE* f = std::fopen(in.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(tf.bytes.data(), 1, tf.bytes.size(), f);
    std::fclose(f);
  }
  const auto target = model::parse_quant_target(type);
  model::quantize_file(in, out, target);
  auto src = io::GgufFile::open(in);
  auto dst = io::GgufFile::open(out);
  EXPECT_EQ(dst->get_int("general.file_type").value(), target.file_type);
  ASSERT_EQ(src->tensors().size(), dst->tensors().size());
  int converted = 0;
  for (const auto& t : src->tensors()) {
    const io::TensorInfo* q = dst->find_tensor(t.name);
    ASSERT_NE(q, nullptr) << t.name;
    ASSERT_EQ(q->ne, t.ne) << t.name;
    if (t.ne.size() != 2) {
      EXPECT_EQ(q->type, t.type) << t.name << ": vectors keep their type";
      continue;
    }
    const bool is_output = t.name == "output.weight";
    const int layer = t.name.rfind("blk.", 0) == 0 ? std::stoi(t.name.substr(4)) : -1;
    EXPECT_EQ(q->type, model::choose_type(target, t.name, t.ne[0], layer, s.n_layer, is_output)) << t.name;
    std::vector<float> a(t.n_elements()), b(t.n_elements());
    const int64_t n_in = t.ne[0];
    for (int64_t r = 0; r < t.ne[1]; ++r) {
      ops::dequantize_row(t.type, t.data + r * io::row_bytes(t.type, n_in), &a[r * n_in], n_in);
      ops::dequantize_row(q->type, q->data + r * io::row_bytes(q->type, n_in), &b[r * n_in], n_in);
    }
    double err = 0, ref = 0;
    for (size_t i = 0; i < a.size(); ++i) err += (a[i] - b[i]) * (a[i] - b[i]), ref += a[i] * a[i];
    const double rel = std::sqrt(err / ref);
    EXPECT_LT(rel, is_output && q->type != target.base ? 0.01 : rel_rms_bound) << t.name << " as " << io::type_name(q->type);
    if (q->type != t.type) {
      EXPECT_GT(rel, 0.0) << t.name << ": conversion changed nothing";
      ++converted;
    }
  }
  EXPECT_GT(converted, 0);
  // And the converted model still runs.
  auto m = model::Model::load(out);
  EXPECT_EQ(m->config().n_layer, s.n_layer);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeRoundTrip,
                         ::testing::Values(std::make_pair("F16", 1e-3), std::make_pair("Q8_0", 0.01),
                                           std::make_pair("Q5_1", 0.05), std::make_pair("Q4_0", 0.12),
                                           std::make_pair("Q4_K_M", 0.12)));

}  // namespace
}  // namespace edgellm
