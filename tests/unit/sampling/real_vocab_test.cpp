// Constrained decoding over the real vocabularies of the test models (49k and 262k tokens):
// random walks must finish and validate, and the trie walk must agree with per-token checks.
// Prints the mask time per step as a figure (not asserted). Skips if a model is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "io/gguf.h"
#include "json_test_support.h"
#include "sampling/constraint.h"
#include "sampling/json_schema.h"
#include "tokenizer/tokenizer.h"

using namespace edgellm;
using nlohmann::json;

namespace {

std::string model_path(const char* file) {
  const char* dir = std::getenv("EDGELLM_MODEL_DIR");
  std::string d = dir ? dir : std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") + "/.cache/edgellm/models";
  return d + "/" + file;
}

std::shared_ptr<const sampling::TokenTrie> load_trie(const std::string& path) {
  auto gguf = io::GgufFile::open(path);
  auto tok = tokenizer::Tokenizer::from_gguf(*gguf);
  std::vector<std::string> pieces(static_cast<size_t>(tok->n_vocab()));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok->n_vocab(); ++id) {
    if (tok->is_end_of_generation(id)) eog.push_back(id);
    if (!tok->is_control(id)) pieces[static_cast<size_t>(id)] = tok->token_bytes(id);
  }
  return std::make_shared<sampling::TokenTrie>(pieces, eog);
}

const char* kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"},
  "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
  "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": false}},
  "required": ["name", "age", "address"], "additionalProperties": false})";

void run_model(const char* file) {
  const std::string path = model_path(file);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not found: " << path << " (set EDGELLM_MODEL_DIR)";
  auto t0 = std::chrono::steady_clock::now();
  auto trie = load_trie(path);
  auto t1 = std::chrono::steady_clock::now();
  const json schema = json::parse(kSchema);
  auto grammar = sampling::compile_json_schema_text(kSchema);
  std::mt19937_64 rng(4);
  double mask_seconds = 0;
  int steps = 0;
  uint64_t max_work = 0, budget = 0;
  for (int w = 0; w < 3; ++w) {
    sampling::Constraint c(grammar, trie);
    std::vector<uint8_t> allowed;  // the walk itself runs slow per-token cross-checks: not timed
    auto r = sampling::testing::random_walk(c, *trie, rng, 25, 600, 50);
    ASSERT_TRUE(r.failure.empty()) << r.failure;
    json doc;
    ASSERT_NO_THROW(doc = json::parse(r.text)) << r.text;
    std::string why;
    EXPECT_TRUE(sampling::testing::validate(doc, schema, schema, &why)) << r.text << ": " << why;
    // Replay the document byte by byte and time the mask computation at every prefix.
    sampling::Constraint replay(grammar, trie);
    auto s0 = std::chrono::steady_clock::now();
    replay.allowed_tokens(allowed);
    mask_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
    ++steps;
    for (char ch : r.text) {
      replay.accept_bytes(std::string(1, ch));
      s0 = std::chrono::steady_clock::now();
      replay.allowed_tokens(allowed);
      mask_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      ++steps;
      max_work = std::max(max_work, replay.last_walk_work());
    }
    budget = replay.walk_budget();
  }
  // An ordinary schema stays far inside the per-token budget (counted, not timed).
  EXPECT_LT(max_work * 4, budget);
  std::printf("[figure] %s: mask work at most %llu of a %llu-step budget\n", file,
              static_cast<unsigned long long>(max_work), static_cast<unsigned long long>(budget));
  std::printf("[figure] %s: vocab %d, trie %zu nodes built in %.0f ms; mask %.3f ms/step over %d steps\n", file,
              trie->n_vocab(), trie->n_nodes(), std::chrono::duration<double, std::milli>(t1 - t0).count(),
              1000.0 * mask_seconds / steps, steps);
}

// Issue 17's freezing patterns are refused by the probe (before generation), ordinary ones not.
void run_hostile(const char* file) {
  const std::string path = model_path(file);
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model not found: " << path << " (set EDGELLM_MODEL_DIR)";
  auto trie = load_trie(path);
  for (const char* pattern : {"(.*){10}", "[\\s\\S]{0,100000}"}) {
    sampling::Constraint c(sampling::compile_json_schema_text(json({{"type", "string"}, {"pattern", pattern}}).dump()), trie);
    EXPECT_THROW(c.probe(), sampling::GrammarLimitError) << pattern;
  }
  for (const char* pattern : {"^[a-z]{1,6}$", "^\\d{3}-\\d{4}$", "^[^@]+@[^@]+\\.[a-z]+$", "ab+c", "\\d+", "^.*$"}) {
    sampling::Constraint c(sampling::compile_json_schema_text(json({{"type", "string"}, {"pattern", pattern}}).dump()), trie);
    EXPECT_NO_THROW(c.probe()) << pattern;
  }
}

}  // namespace

TEST(JsonSchemaRealVocab, HostilePatternsSmolLM2) { run_hostile("SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(JsonSchemaRealVocab, SmolLM2) { run_model("SmolLM2-135M-Instruct.Q4_1.gguf"); }
TEST(JsonSchemaRealVocab, Gemma3) { run_model("gemma-3-270m-q4_k_m.gguf"); }
