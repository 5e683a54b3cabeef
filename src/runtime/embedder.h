#pragma once
// Embedder: a sentence-embedding model (model/bert.h) with its WordPiece tokenizer and its own
// thread pool: text in, one unit-length vector per text out. Used by `edgellm embed` and by
// the server's /v1/embeddings beside a chat model (serve --embedding-model); it never shares
// the chat model's pool or scheduler, so embedding requests do not queue behind generations.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "model/bert.h"
#include "ops/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::runtime {

class Embedder {
 public:
  // Throws ModelFormatError when the file is not a sentence-embedding model (naming what it
  // is instead) or is malformed. n_threads <= 0: physical cores.
  static std::unique_ptr<Embedder> load(const std::string& path, int n_threads = 0);

  const model::BertConfig& config() const { return model_->config(); }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  int32_t dim() const { return model_->config().n_embd; }
  int32_t max_tokens() const { return model_->config().n_ctx; }
  const io::GgufFile& file() const { return model_->file(); }  // its metadata (the C API's)

  // [CLS] text [SEP]; special tokens written in the text ([SEP], [MASK]) are recognised.
  std::vector<int32_t> tokenize(std::string_view text) const;
  // One vector of dim() floats per sequence (ids as tokenize() gives them). Thread-safe: calls
  // take turns on the pool. InvalidArgument for an empty or too long sequence or a bad id.
  std::vector<std::vector<float>> embed_tokens(const std::vector<std::vector<int32_t>>& seqs) const;
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) const;

 private:
  Embedder() = default;
  std::unique_ptr<model::BertModel> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<ops::ThreadPool> pool_;
  mutable std::mutex mu_;
  mutable model::BertWorkspace ws_;
};

}  // namespace edgellm::runtime
