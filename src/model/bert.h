#pragma once
// BERT sentence encoders (llama.cpp's "bert" GGUF layout, as `edgellm convert` writes it):
// word + absolute position + token-type-0 embeddings and LayerNorm, then per layer
// bidirectional multi-head attention and an erf-GELU MLP, each followed by the residual add and
// LayerNorm (post-LN); the token states are pooled (mean over the sequence's tokens, or its
// first token for CLS pooling) and L2-normalised. No KV cache: a sequence is encoded whole.
// A separate model class because nothing of the decoders' pass (causal cache, RoPE, RMSNorm,
// gated MLP, output head) applies; read-only after load, like Model.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "ops/ops.h"
#include "ops/thread_pool.h"

namespace edgellm::model {

enum class BertPooling { Mean = 1, Cls = 2 };  // llama.cpp's pooling_type values

struct BertConfig {
  std::string name;
  int32_t n_layer = 0, n_embd = 0, n_head = 0, head_dim = 0, n_ff = 0;
  int32_t n_ctx = 0;  // position embeddings: the longest sequence
  int32_t n_vocab = 0, n_types = 0;
  float eps = 1e-12f;
  BertPooling pooling = BertPooling::Mean;
};

struct BertLayer {
  ops::MatrixView wq, wk, wv, wo, w_up, w_down;
  std::vector<float> bq, bk, bv, bo, b_up, b_down;
  std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
};

// Scratch reused across calls (grown on demand).
struct BertWorkspace {
  std::vector<float> x, q, k, v, attn, proj, up, scores;
};

class BertModel {
 public:
  // Whether the file is a "bert" architecture model (an embedding model, not a decoder).
  static bool is_bert(const io::GgufFile& file);
  // Throws ModelFormatError naming a missing or malformed key or tensor.
  static std::unique_ptr<BertModel> from_file(std::unique_ptr<io::GgufFile> file);
  static std::unique_ptr<BertModel> load(const std::string& path);

  const BertConfig& config() const { return config_; }
  const io::GgufFile& file() const { return *file_; }

  // Token ids (with [CLS] ... [SEP] as the tokenizer adds them) of each sequence -> one
  // unit-length vector of n_embd floats per sequence in out [seqs.size()][n_embd]. Sequences
  // run together in passes of up to max_batch_tokens() tokens (one longer sequence alone).
  // Throws InvalidArgument for an empty sequence, a sequence longer than n_ctx or a bad id.
  void embed(const std::vector<std::vector<int32_t>>& seqs, BertWorkspace& ws, ops::ThreadPool& pool,
             float* out) const;
  static int64_t max_batch_tokens() { return 1024; }

 private:
  BertModel() = default;
  // One pass over sequences [first, last) of seqs.
  void run_pass(const std::vector<std::vector<int32_t>>& seqs, size_t first, size_t last, BertWorkspace& ws,
                ops::ThreadPool& pool, float* out) const;

  std::unique_ptr<io::GgufFile> file_;
  BertConfig config_;
  ops::MatrixView token_embd_, position_embd_, token_types_;
  std::vector<float> embd_norm_w_, embd_norm_b_;
  std::vector<BertLayer> layers_;
  // Layer matrices repacked for the active kernels (ops::repack_preferred), as Weights keeps them.
  std::vector<std::unique_ptr<uint8_t[]>> repacked_;
};

}  // namespace edgellm::model
