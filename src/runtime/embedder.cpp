#include "runtime/embedder.h"

#include "util/error.h"

namespace edgellm::runtime {

std::unique_ptr<Embedder> Embedder::load(const std::string& path, int n_threads) {
  auto file = io::GgufFile::open(path);
  if (!model::BertModel::is_bert(*file)) {
    const std::string arch = file->get_string("general.architecture").value_or("?");
    throw ModelFormatError(path + " is a '" + arch +
                           "' model, not a sentence-embedding model (BERT); convert one with `edgellm convert`");
  }
  std::unique_ptr<Embedder> e(new Embedder());
  e->tokenizer_ = tokenizer::Tokenizer::from_gguf(*file);
  e->model_ = model::BertModel::from_file(std::move(file));
  if (e->tokenizer_->n_vocab() != e->model_->config().n_vocab)
    throw ModelFormatError(path + ": the vocabulary has " + std::to_string(e->tokenizer_->n_vocab()) +
                           " tokens but token_embd has " + std::to_string(e->model_->config().n_vocab) + " rows");
  e->pool_ = std::make_unique<ops::ThreadPool>(n_threads);
  return e;
}

// "[SEP]" typed in a text is the special token, as in HF tokenizers and sentence-transformers
// (the reference): an embedding has no turns a user could end, unlike a chat prompt.
std::vector<int32_t> Embedder::tokenize(std::string_view text) const { return tokenizer_->encode(text, true, true); }

std::vector<std::vector<float>> Embedder::embed_tokens(const std::vector<std::vector<int32_t>>& seqs) const {
  const int64_t d = dim();
  std::vector<float> flat(seqs.size() * d);
  {
    std::lock_guard<std::mutex> lk(mu_);
    model_->embed(seqs, ws_, *pool_, flat.data());
  }
  std::vector<std::vector<float>> out(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) out[i].assign(flat.begin() + i * d, flat.begin() + (i + 1) * d);
  return out;
}

std::vector<std::vector<float>> Embedder::embed(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int32_t>> seqs;
  seqs.reserve(texts.size());
  for (const auto& t : texts) seqs.push_back(tokenize(t));
  return embed_tokens(seqs);
}

}  // namespace edgellm::runtime
