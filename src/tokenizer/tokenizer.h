#pragma once
// Text <-> token ids from the vocabulary stored in a GGUF file (byte-level BPE "gpt2",
// SentencePiece-style "llama" and WordPiece "bert" models), plus streaming detokenization.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "io/gguf.h"

namespace edgellm::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Reads tokenizer.ggml.* keys; throws ModelFormatError if the model kind, pre-tokenizer or
  // vocabulary is unsupported or inconsistent.
  static std::unique_ptr<Tokenizer> from_gguf(const io::GgufFile& file);

  // add_bos: prepend BOS if the model asks for it (tokenizer.ggml.add_bos_token), and append
  // EOS if it asks for that too (add_eos_token; BERT's [CLS] ... [SEP]).
  // parse_special: text like "<|im_start|>" becomes its special token; otherwise it is
  // tokenized as plain text (hostile user text must not inject control tokens).
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const {
    return encode(text, add_bos, parse_special, {});
  }
  // Byte range [begin, end) of the text.
  struct TextRange {
    size_t begin = 0, end = 0;
  };
  // As above, but inside the `plain` spans (sorted, non-overlapping) control tokens are never
  // recognised: a chat prompt parses the template's own control tokens while the messages'
  // text stays text, so a user cannot end their turn by typing "<|im_end|>". A control token
  // that would straddle a span boundary is not recognised either.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special,
                                      std::span<const TextRange> plain) const = 0;
  // Concatenated bytes of the pieces (control tokens render as their text unless skipped).
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // Raw bytes of one token (may be an incomplete UTF-8 sequence).
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual std::string token_text(int32_t id) const = 0;  // the vocabulary string as stored
  virtual std::optional<int32_t> find_token(std::string_view text) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;  // -1 if none
  // End-of-generation: eos, eot, <|im_end|>, <end_of_turn> ...
  virtual bool is_end_of_generation(int32_t id) const = 0;
  virtual bool is_control(int32_t id) const = 0;
  virtual bool add_bos_default() const = 0;
};

// Feeds token ids one at a time and returns only complete UTF-8 text, holding back the bytes
// of a character split across tokens. Invalid sequences come out as U+FFFD at flush.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true)
      : tok_(tok), skip_special_(skip_special) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace edgellm::tokenizer
