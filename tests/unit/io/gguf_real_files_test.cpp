// Real GGUF files (models and vocab-only files) open through mmap and expose what the
// published models are known to hold. Skipped when a file is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "io/gguf.h"

namespace edgellm::io {
namespace {

std::string model_dir() {
  if (const char* d = std::getenv("EDGELLM_MODEL_DIR")) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/root") + "/.cache/edgellm/models";
}

std::string require_file(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  return path;
}

#define OPEN_OR_SKIP(var, path)                                   \
  const std::string var##_path = require_file(path);              \
  if (var##_path.empty()) GTEST_SKIP() << "absent: " << (path);   \
  auto var = GgufFile::open(var##_path)

void expect_tensors_inside_mapping(const GgufFile& f) {
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    ASSERT_NE(t.data, nullptr) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % f.alignment(), 0u) << t.name;
  }
  if (!f.tensors().empty()) {
    // The last tensor's bytes are readable (the mapping covers them).
    const TensorInfo& last = f.tensors().back();
    volatile uint8_t sink = last.data[last.nbytes - 1];
    (void)sink;
  }
}

TEST(GgufRealFiles, SmolLM2) {
  OPEN_OR_SKIP(f, model_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->require_int("llama.block_count"), 30);
  EXPECT_EQ(f->require_int("llama.embedding_length"), 576);
  EXPECT_EQ(f->require_int("llama.attention.head_count"), 9);
  EXPECT_EQ(f->require_int("llama.attention.head_count_kv"), 3);
  EXPECT_EQ(f->require_int("llama.feed_forward_length"), 1536);
  EXPECT_DOUBLE_EQ(f->require_float("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(f->require_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 49152u);
  EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->size(), 49152u);
  EXPECT_EQ(f->tensors().size(), 272u);
  const TensorInfo& emb = f->require_tensor("token_embd.weight", {576, 49152});
  EXPECT_EQ(emb.type, TensorType::Q8_0);
  EXPECT_EQ(emb.nbytes, 576u / 32 * 34 * 49152);
  EXPECT_EQ(f->require_tensor("blk.0.ffn_up.weight", {576, 1536}).type, TensorType::Q4_1);
  EXPECT_EQ(f->require_tensor("blk.29.attn_norm.weight", {576}).type, TensorType::F32);
  expect_tensors_inside_mapping(*f);
}

TEST(GgufRealFiles, Gemma3) {
  OPEN_OR_SKIP(f, model_dir() + "/gemma-3-270m-q4_k_m.gguf");
  EXPECT_EQ(*f->get_string("general.architecture"), "gemma3");
  EXPECT_EQ(f->require_int("gemma3.embedding_length"), 640);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 262144u);
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores")->size(), 262144u);
  EXPECT_EQ(f->tensors().size(), 236u);
  EXPECT_EQ(f->require_tensor("token_embd.weight", {640, 262144}).type, TensorType::Q8_0);
  expect_tensors_inside_mapping(*f);
}

TEST(GgufRealFiles, VocabOnlyFilesHaveNoTensors) {
  const std::string dir = std::string(EDGELLM_SHARED_DIR) + "/conformance/vocab";
  bool any = false;
  for (const auto& [name, n_tokens] : {std::pair<const char*, size_t>{"ggml-vocab-gpt-2.gguf", 50257},
                                       {"ggml-vocab-llama-spm.gguf", 32000}}) {
    const std::string path = dir + "/" + name;
    if (!std::filesystem::exists(path)) continue;
    any = true;
    auto f = GgufFile::open(path);
    EXPECT_TRUE(f->tensors().empty()) << name;
    EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), n_tokens) << name;
  }
  if (!any) GTEST_SKIP() << "no vocab files under " << dir;
}

}  // namespace
}  // namespace edgellm::io
