// Session::set_lora: a session's cached prefix is reused only under the adapter set that computed
// it (a different set, or none, re-runs the whole prompt), and the same set keeps the cache.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "lora_util.h"
#include "model_cache.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

TEST(LoraSession, PrefixIsReusedOnlyUnderTheSameAdapters) {
  auto e = testing::load_cached_or_null("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!e) GTEST_SKIP() << "SmolLM2 absent (scripts/fetch-models)";
  std::vector<uint8_t> b1, b2;
  const model::LoraSet a{{{testing::make_lora(*e, 1, b1), 1.0f}}};
  const model::LoraSet a_copy = a, a_rescaled{{{a.entries[0].adapter, 0.5f}}};
  const auto prompt = e->tokenize_prompt("A short prompt about the sea and its tides.");
  const size_t n = prompt.size(), V = static_cast<size_t>(e->config().n_vocab);
  std::vector<float> base(V), with(V), again(V);

  Session s(*e, 64);
  EXPECT_EQ(s.load_prompt(prompt, base.data()), static_cast<int32_t>(n));
  EXPECT_EQ(s.load_prompt(prompt, again.data()), 1) << "same set: the cached prefix is reused";

  s.set_lora(a);
  EXPECT_TRUE(s.tokens().empty()) << "a new adapter set empties the cache";
  EXPECT_EQ(s.load_prompt(prompt, with.data()), static_cast<int32_t>(n)) << "the prefix was computed without it";
  EXPECT_NE(base, with);
  s.set_lora(a_copy);  // equal set: the cache stays
  EXPECT_EQ(s.load_prompt(prompt, again.data()), 1);
  EXPECT_EQ(again, with);
  s.set_lora(a_rescaled);  // another scale is another set
  EXPECT_EQ(s.load_prompt(prompt, again.data()), static_cast<int32_t>(n));
  s.set_lora({});
  EXPECT_EQ(s.load_prompt(prompt, again.data()), static_cast<int32_t>(n));
  EXPECT_EQ(again, base) << "back to the base: its logits bit for bit";

  // An adapter loaded for another model is refused, and the session keeps working.
  auto other = testing::load_cached_or_null("gemma-3-270m-q4_k_m.gguf");
  if (other) {
    std::vector<uint8_t> b3;
    const model::LoraSet foreign{{{testing::make_lora(*other, 3, b3), 1.0f}}};
    EXPECT_THROW(s.set_lora(foreign), InvalidArgument);
    EXPECT_EQ(s.load_prompt(prompt, again.data()), 1);
  }
}

}  // namespace
}  // namespace edgellm::runtime
