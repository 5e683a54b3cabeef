// The key calibration on a real Qwen2 model (model/key_offset.h): it runs only when a q8_0 /
// q4_0 key cache asks for it (a float cache costs nothing at load).
// Qwen2.5-Coder-0.5B's layer 0 has outlier key channels, so it gets scales > 1, and a q8_0 /
// q4_0 key cache, which divides those keys by the scales while attention multiplies the query
// by them, gives the next-token logits of the f32 cache closely.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "model_cache.h"
#include "runtime/engine.h"

namespace edgellm::runtime {
namespace {

TEST(KeyScaleModel, Qwen05BOutlierLayerIsScaledAndQuantizedKeysKeepTheLogits) {
  auto engine = testing::load_cached_or_null("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
  if (!engine) GTEST_SKIP() << "Qwen2.5-Coder-0.5B is not in the model cache";
  // Loading calibrates nothing; float caches use the plain configuration.
  EXPECT_TRUE(engine->config().key_offset.empty());
  EXPECT_TRUE(engine->config().key_scale.empty());
  EXPECT_EQ(&engine->model().cache_config({io::TensorType::F16, io::TensorType::Q8_0}), &engine->config());
  const model::ModelConfig& c = engine->model().cache_config({io::TensorType::Q8_0, io::TensorType::F32});
  EXPECT_EQ(&engine->model().cache_config({io::TensorType::Q4_0, io::TensorType::F16}), &c);  // once
  ASSERT_EQ(c.key_offset.size(), static_cast<size_t>(c.n_layer) * c.kv_dim());
  ASSERT_EQ(c.key_scale.size(), static_cast<size_t>(c.n_layer) * c.kv_dim());
  EXPECT_GT(*std::max_element(c.key_scale.begin(), c.key_scale.begin() + c.kv_dim()), 2.f);
  const auto prompt = engine->tokenizer().encode(
      "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
      "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n# Print the first ten numbers\nfor i in",
      false, false);
  const int32_t nv = c.n_vocab;
  std::vector<float> want(nv), got(nv);
  Session f32(*engine, 256, {});
  f32.load_prompt(prompt, want.data());
  const int32_t top = static_cast<int32_t>(std::max_element(want.begin(), want.end()) - want.begin());
  for (io::TensorType kt : {io::TensorType::Q8_0, io::TensorType::Q4_0}) {
    Session q(*engine, 256, {kt, io::TensorType::F32});
    q.load_prompt(prompt, got.data());
    float diff = 0;
    for (int32_t i = 0; i < nv; ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
    EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(), top) << io::type_name(kt);
    EXPECT_LT(diff, kt == io::TensorType::Q8_0 ? 0.5f : 3.f) << io::type_name(kt);
  }
}

}  // namespace
}  // namespace edgellm::runtime
