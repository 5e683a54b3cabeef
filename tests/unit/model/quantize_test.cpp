// edgellm quantize: type choice rules and an end-to-end conversion whose logits stay close to
// the fp32 original.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "model/model.h"
#include "model/quantize.h"
#include "tiny_model.h"

namespace edgellm {
namespace {

using io::TensorType;

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

class QuantizeRoundTrip : public ::testing::TestWithParam<std::pair<const char*, double>> {};

TEST_P(QuantizeRoundTrip, LogitsStayCloseToFp32) {
  const auto [type, tol] = GetParam();
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
  model::quantize_file(in, out, model::parse_quant_target(type));
  auto ref = model::Model::load(in);
  auto q = model::Model::load(out);
  EXPECT_EQ(q->file().get_int("general.file_type").value(), model::parse_quant_target(type).file_type);

  auto run = [&](const model::Model& m) {
    model::KvCache kv(m.config(), 8);
    model::Workspace ws;
    ops::ThreadPool pool(1);
    model::Batch b;
    for (int t = 0; t < 6; ++t) b.add((t * 5 + 1) % s.n_vocab, t, &kv, true);
    std::vector<float> logits(6 * s.n_vocab);
    m.forward(b, ws, pool, logits.data());
    return logits;
  };
  const auto a = run(*ref), b = run(*q);
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(a[i] - b[i])));
    max_abs = std::max(max_abs, double(std::abs(a[i])));
  }
  EXPECT_GT(max_diff, 0.0) << "conversion changed nothing: was the type applied?";
  EXPECT_LT(max_diff / max_abs, tol) << type << " max diff " << max_diff << " of " << max_abs;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeRoundTrip,
                         ::testing::Values(std::make_pair("F16", 0.01), std::make_pair("Q8_0", 0.05),
                                           std::make_pair("Q5_1", 0.15), std::make_pair("Q4_0", 0.3),
                                           std::make_pair("Q4_K_M", 0.3)));

}  // namespace
}  // namespace edgellm
