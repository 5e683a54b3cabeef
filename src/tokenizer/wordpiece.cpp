// WordPiece ("bert" model): BERT normalization and word splitting (bert_normalize.h), then per
// word the longest vocabulary piece from the left, again and again; a word with a part no piece
// covers, or longer than 100 characters, becomes [UNK] as a whole (HF WordPiece).
// Vocabulary forms: llama.cpp's converter writes word-initial pieces as "\u2581word" and
// continuations bare; HF's form (initial bare, continuations "##...") is read too.
#include "tokenizer/bert_normalize.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

constexpr std::string_view kPhantomSpace = "\xE2\x96\x81";  // U+2581
constexpr size_t kMaxWordChars = 100;

class WordPieceTokenizer final : public VocabTokenizer {
 public:
  WordPieceTokenizer(const io::GgufFile& f, Vocab v) : VocabTokenizer(std::move(v)) {
    if (vocab_.unk < 0) vocab_.unk = vocab_.find("[UNK]");
    if (vocab_.unk < 0) throw ModelFormatError("WordPiece vocabulary without [UNK] in " + f.path());
    // [CLS] text [SEP] when special tokens are asked for.
    auto id = [&](const char* key, const char* text) {
      const auto v = f.get_int(key);
      if (v && *v >= 0 && *v < vocab_.size()) return static_cast<int32_t>(*v);
      return vocab_.find(text);
    };
    vocab_.bos = id("tokenizer.ggml.cls_token_id", "[CLS]");
    vocab_.eos = id("tokenizer.ggml.seperator_token_id", "[SEP]");
    vocab_.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(true);
    vocab_.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(true);
    vocab_.add_space_prefix = true;  // decode drops the first word's leading space

    bool phantom = false;
    for (int32_t i = 0; i < vocab_.size() && !phantom; ++i)
      phantom = vocab_.type[i] == kTypeNormal && vocab_.text[i].starts_with(kPhantomSpace);
    word_prefix_ = phantom ? kPhantomSpace : "";
    cont_prefix_ = phantom ? "" : "##";
    // Uncased vocabularies (no normal piece with a character that lowercases to another one)
    // get lowercasing and accent stripping, as their tokenizer.json's BertNormalizer says.
    options_.lowercase = options_.strip_accents = !has_cased_piece();

    for (int32_t i = 0; i < vocab_.size(); ++i) {
      if (vocab_.type[i] != kTypeNormal && vocab_.type[i] != kTypeUserDefined) continue;
      std::string_view t = vocab_.text[i];
      if (!word_prefix_.empty() && t.starts_with(word_prefix_))
        initial_.add(t.substr(word_prefix_.size()), i, false);
      else if (!cont_prefix_.empty() && t.starts_with(cont_prefix_))
        continuation_.add(t.substr(cont_prefix_.size()), i, false);
      else
        (word_prefix_.empty() ? initial_ : continuation_).add(t, i, false);
    }

    bytes_.resize(vocab_.size());
    for (int32_t i = 0; i < vocab_.size(); ++i) {
      std::string_view t = vocab_.text[i];
      if (vocab_.type[i] == kTypeNormal && !word_prefix_.empty() && t.starts_with(word_prefix_))
        bytes_[i] = " " + std::string(t.substr(word_prefix_.size()));
      else if (vocab_.type[i] == kTypeNormal && !cont_prefix_.empty() && t.starts_with(cont_prefix_))
        bytes_[i] = std::string(t.substr(cont_prefix_.size()));
      else if (vocab_.type[i] == kTypeNormal && word_prefix_.empty())
        bytes_[i] = " " + std::string(t);
      else
        bytes_[i] = std::string(t);
    }
  }

 protected:
  void encode_fragment(std::string_view text, bool, std::vector<int32_t>& out) const override {
    for (const auto& word : bert_words(text, options_)) encode_word(word, out);
  }

 private:
  bool has_cased_piece() const {
    std::vector<uint32_t> low;
    for (int32_t i = 0; i < vocab_.size(); ++i) {
      if (vocab_.type[i] != kTypeNormal) continue;
      for (const auto& u : unicode::decode_utf8(vocab_.text[i])) {
        low.clear();
        unicode::append_lower(u.cp, low);
        if (low.size() != 1 || low[0] != u.cp) return true;
      }
    }
    return false;
  }

  void encode_word(const std::vector<uint32_t>& word, std::vector<int32_t>& out) const {
    if (word.size() > kMaxWordChars) {
      out.push_back(vocab_.unk);
      return;
    }
    std::string utf8;
    for (uint32_t cp : word) unicode::append_utf8(utf8, cp);
    const size_t first = out.size();
    for (size_t pos = 0; pos < utf8.size();) {
      // Longest piece at pos (a trie walk): pieces are whole UTF-8 characters, so a match ends
      // on a character boundary of the word.
      int32_t id = -1;
      const size_t n = (pos == 0 ? initial_ : continuation_).match(utf8, pos, true, &id);
      if (n == 0) {
        out.resize(first);
        out.push_back(vocab_.unk);
        return;
      }
      out.push_back(id);
      pos += n;
    }
  }

  BertOptions options_;
  // Word-initial pieces and continuations, each without its prefix (U+2581 or ##).
  SpecialMatcher initial_, continuation_;
  std::string word_prefix_, cont_prefix_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_wpm_tokenizer(const io::GgufFile& file, Vocab vocab) {
  return std::make_unique<WordPieceTokenizer>(file, std::move(vocab));
}

}  // namespace edgellm::tokenizer
