// A token's logits must not depend on how the prompt was batched: one prefill pass, chunks of
// any size (prefix reuse continues a cache with a chunk), token-by-token decode, or decode
// steps shared with another sequence (continuous batching) all give bit-identical logits in
// the default int8-activation mode. Otherwise greedy text changes with batching. Quantized
// tiny models (legacy and K-quant formats, produced by `quantize`), every ISA.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/quantize.h"
#include "ops/ops.h"
#include "tiny_model.h"

namespace edgellm {
namespace {

struct Param {
  const char* arch;
  const char* quant;
};

class BatchInvariance : public ::testing::TestWithParam<Param> {};

// Logits of every position of `toks`, fed in chunks of the given sizes (cycled) into a fresh
// cache of the given types. With `other` set, each pass also carries one decode token of a
// second sequence.
std::vector<float> run(const model::Model& m, const std::vector<int>& toks, const std::vector<int>& chunks,
                       bool other, int threads, model::KvTypes types = {}) {
  const int n_vocab = m.config().n_vocab;
  model::KvCache kv(m.config(), 64, types), kv2(m.config(), 64, types);
  model::Workspace ws;
  ops::ThreadPool pool(threads);
  std::vector<float> out(toks.size() * n_vocab), buf((toks.size() + 1) * n_vocab);
  size_t pos = 0, ci = 0;
  int pos2 = 0;
  while (pos < toks.size()) {
    const size_t n = std::min<size_t>(chunks[ci++ % chunks.size()], toks.size() - pos);
    model::Batch b;
    if (other) b.add((7 * pos2 + 1) % n_vocab, pos2, &kv2, true), ++pos2;
    for (size_t i = 0; i < n; ++i) b.add(toks[pos + i], static_cast<int32_t>(pos + i), &kv, true);
    m.forward(b, ws, pool, buf.data());
    std::memcpy(&out[pos * n_vocab], &buf[(other ? 1 : 0) * n_vocab], n * n_vocab * sizeof(float));
    pos += n;
  }
  return out;
}

// Empty when every position's logits equal the reference bit for bit; else the first position
// that differs and its largest difference.
std::string first_difference(const std::vector<float>& got, const std::vector<float>& ref, size_t n_pos,
                             int n_vocab) {
  for (size_t t = 0; t < n_pos; ++t) {
    const float* a = &got[t * n_vocab];
    const float* b = &ref[t * n_vocab];
    if (std::memcmp(a, b, n_vocab * sizeof(float)) == 0) continue;
    float max_diff = 0;
    for (int v = 0; v < n_vocab; ++v) max_diff = std::max(max_diff, std::abs(a[v] - b[v]));
    return "position " + std::to_string(t) + " differs from token-by-token decode (max |diff| " +
           std::to_string(max_diff) + ")";
  }
  return "";
}

TEST_P(BatchInvariance, ChunkedPrefillEqualsTokenByTokenDecode) {
  const Param p = GetParam();
  testing::TinySpec s;
  s.arch = p.arch;
  // Rows of 256 so the K-quant formats apply to every matrix.
  s.n_embd = 256, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 64, s.n_ff = 512, s.n_vocab = 96;
  s.n_layer = 2;
  s.sliding_window = 8;
  auto tf = testing::make_tiny(s);
  const auto dir = std::filesystem::temp_directory_path() / ("edgellm_batchinv_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string in = (dir / "in.gguf").string(), out = (dir / (std::string(p.quant) + ".gguf")).string();
  {
    FILE* f = std::fopen(in.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(tf.bytes.data(), 1, tf.bytes.size(), f);
    std::fclose(f);
  }
  model::quantize_file(in, out, model::parse_quant_target(p.quant));
  auto m = model::Model::load(out);
  std::filesystem::remove_all(dir);

  const bool exact_was = ops::exact_activations();
  ops::set_exact_activations(false);  // the int8 kernels are what this is about
  const std::string isa_was = ops::active_isa();
  std::vector<int> toks;
  for (int i = 0; i < 37; ++i) toks.push_back((i * 11 + 5) % s.n_vocab);
  const int n_vocab = m->config().n_vocab;
  for (const std::string& isa : ops::available_isas()) {
    ASSERT_TRUE(ops::force_isa(isa));
    const auto decode = run(*m, toks, {1}, false, 2);
    struct Way {
      std::vector<int> chunks;
      bool other;
      int threads;
      const char* what;
    };
    const Way ways[] = {{{37}, false, 2, "one prefill pass (parallel quantization)"},
                        {{5, 3, 16, 2}, false, 2, "chunks of 5, 3, 16, 2"},
                        {{4}, false, 3, "chunks of 4, 3 threads"},
                        {{1, 6}, true, 1, "with another sequence's decode token in every pass"}};
    for (const Way& w : ways) {
      const std::string diff = first_difference(run(*m, toks, w.chunks, w.other, w.threads), decode, toks.size(), n_vocab);
      if (!diff.empty()) ADD_FAILURE() << p.arch << " " << p.quant << " isa=" << isa << ", " << w.what << ": " << diff;
    }
  }
  ops::force_isa(isa_was);
  ops::set_exact_activations(exact_was);
}

// The same on the real models when they are cached (they have the massive activations and
// vocabulary sizes of the field): 40 tokens as one pass vs chunks vs decode, default ISA, with
// an f32 and a q8_0 cache (Qwen2.5: 2 KV heads stored head-major, the q8_0 keys' int8-query
// scores on VNNI machines; a chunk's tokens read rows that earlier chunks wrote).
class RealModelBatchInvariance : public ::testing::TestWithParam<const char*> {};

TEST_P(RealModelBatchInvariance, ChunkedPrefillEqualsTokenByTokenDecode) {
  const char* dir = std::getenv("EDGELLM_MODEL_DIR");
  const char* home = std::getenv("HOME");
  const std::string path = (dir ? std::string(dir) : std::string(home ? home : "") + "/.cache/edgellm/models") + "/" +
                           GetParam();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "model " << path << " is absent (set EDGELLM_MODEL_DIR)";
  auto m = model::Model::load(path);
  const bool exact_was = ops::exact_activations();
  ops::set_exact_activations(false);
  std::vector<int> toks;
  for (int i = 0; i < 40; ++i) toks.push_back((i * 7919 + 2) % m->config().n_vocab);
  const int n_vocab = m->config().n_vocab;
  for (const model::KvTypes types : {model::KvTypes{}, model::KvTypes{io::TensorType::Q8_0, io::TensorType::Q8_0}}) {
    const auto decode = run(*m, toks, {1}, false, 2, types);
    for (const auto& chunks : {std::vector<int>{40}, std::vector<int>{17, 5}}) {
      const std::string diff = first_difference(run(*m, toks, chunks, false, 2, types), decode, toks.size(), n_vocab);
      if (!diff.empty())
        ADD_FAILURE() << GetParam() << " " << model::kv_type_name(types.k) << " cache, chunks of " << chunks[0] << ": "
                      << diff;
    }
  }
  ops::set_exact_activations(exact_was);
}

INSTANTIATE_TEST_SUITE_P(Cached, RealModelBatchInvariance,
                         ::testing::Values("SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf",
                                           "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

INSTANTIATE_TEST_SUITE_P(Formats, BatchInvariance,
                         ::testing::Values(Param{"llama", "Q4_1"}, Param{"llama", "Q4_0"}, Param{"llama", "Q8_0"},
                                           Param{"llama", "Q4_K_M"}, Param{"gemma3", "Q4_K_M"},
                                           Param{"qwen2", "Q5_1"}),
                         [](const auto& info) { return std::string(info.param.arch) + "_" + info.param.quant; });

}  // namespace
}  // namespace edgellm
