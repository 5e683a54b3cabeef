// ModelPool's name resolution: names, then aliases (the short names typed after -m); an unknown
// name is a 404 listing the served names; a name or alias standing for two models is refused.
// The host function fails on purpose, so the 500 it turns into names the model that was chosen
// without loading any weights.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/model_pool.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

ModelSpec spec(const std::string& name, std::vector<std::string> aliases = {}) {
  ModelSpec s;
  s.name = name;
  s.aliases = std::move(aliases);
  s.path = "/nonexistent/" + name + ".gguf";
  return s;
}

ModelPool::HostFn failing_host() {
  return [](const ModelSpec&) -> std::unique_ptr<HostedModel> { throw std::runtime_error("not loaded in this test"); };
}

// The model acquire() picked for `name`, read from the load failure it reports.
std::string chosen(ModelPool& pool, const std::string& name) {
  try {
    pool.acquire(name);
  } catch (const ApiError& e) {
    if (e.status != 500) return "status " + std::to_string(e.status) + ": " + e.what();
    const std::string m = e.what(), key = "cannot load the model '";
    const auto at = m.find(key);
    if (at == std::string::npos) return m;
    return m.substr(at + key.size(), m.find('\'', at + key.size()) - at - key.size());
  }
  return "loaded?";
}

TEST(ModelPool, ResolvesNamesThenAliases) {
  ModelPool pool({spec("SmolLM2-135M-Instruct.Q4_1", {"smollm2-135m"}), spec("gemma-3-270m-q4_k_m", {"gemma3-270m"}),
                  spec("gemma3-270m")},
                 0, 0, failing_host());
  EXPECT_EQ(chosen(pool, "smollm2-135m"), "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(chosen(pool, "SmolLM2-135M-Instruct.Q4_1"), "SmolLM2-135M-Instruct.Q4_1");
  EXPECT_EQ(chosen(pool, "gemma-3-270m-q4_k_m"), "gemma-3-270m-q4_k_m");
  // A model's own name wins over another model's alias.
  EXPECT_EQ(chosen(pool, "gemma3-270m"), "gemma3-270m");
  EXPECT_EQ(chosen(pool, ""), "SmolLM2-135M-Instruct.Q4_1");
  const std::string unknown = chosen(pool, "llama3");
  EXPECT_NE(unknown.find("status 404"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("'gemma-3-270m-q4_k_m'"), std::string::npos) << unknown;
}

TEST(ModelPool, RefusesAnAliasForTwoModels) {
  EXPECT_THROW(ModelPool({spec("a", {"x"}), spec("b", {"x"})}, 0, 0, failing_host()), InvalidArgument);
  EXPECT_THROW(ModelPool({spec("a"), spec("a")}, 0, 0, failing_host()), InvalidArgument);
  EXPECT_NO_THROW(ModelPool({spec("a", {"x"}), spec("b", {"y"})}, 0, 0, failing_host()));
}

}  // namespace
}  // namespace edgellm::server
