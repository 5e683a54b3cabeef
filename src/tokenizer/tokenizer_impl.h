#pragma once
// Shared implementation of both tokenizer models: special-token splitting, BOS, decoding and
// the vocabulary accessors. Subclasses only tokenize plain-text fragments.
#include <memory>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace edgellm::tokenizer {

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}

  using Tokenizer::encode;
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special,
                              std::span<const TextRange> plain) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  std::string token_bytes(int32_t id) const override;
  std::string token_text(int32_t id) const override;
  std::optional<int32_t> find_token(std::string_view text) const override;

  int32_t n_vocab() const override { return vocab_.size(); }
  int32_t bos_id() const override { return vocab_.bos; }
  int32_t eos_id() const override { return vocab_.eos; }
  bool is_end_of_generation(int32_t id) const override { return vocab_.valid(id) && vocab_.eog[id]; }
  bool is_control(int32_t id) const override {
    return vocab_.valid(id) && (vocab_.type[id] == kTypeControl || vocab_.type[id] == kTypeUnknown);
  }
  bool add_bos_default() const override { return vocab_.add_bos; }

  const Vocab& vocab() const { return vocab_; }

 protected:
  // Tokenizes one stretch of text without special tokens. `after_special` is true for the
  // first fragment and for fragments that follow a special token (SentencePiece adds its
  // space prefix only there).
  virtual void encode_fragment(std::string_view text, bool after_special,
                               std::vector<int32_t>& out) const = 0;
  // Bytes every token decodes to, filled by the subclass constructor.
  std::vector<std::string> bytes_;
  Vocab vocab_;
};

// tokenizer.ggml.model == "gpt2": byte-level BPE with a regex pre-tokenizer.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(const io::GgufFile& file, Vocab vocab);
// tokenizer.ggml.model == "llama": SentencePiece BPE over scores with byte fallback.
std::unique_ptr<Tokenizer> make_spm_tokenizer(const io::GgufFile& file, Vocab vocab);
// tokenizer.ggml.model == "bert": WordPiece with BERT's normalizer.
std::unique_ptr<Tokenizer> make_wpm_tokenizer(const io::GgufFile& file, Vocab vocab);

}  // namespace edgellm::tokenizer
