#pragma once
// Vocabulary shared by both tokenizer models: token strings, types, scores, special ids, and
// the matcher that finds special tokens in raw text.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/gguf.h"

namespace edgellm::tokenizer {

// tokenizer.ggml.token_type values (SentencePiece piece types).
enum TokenType : int32_t {
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Finds control / user-defined token texts in raw text (leftmost, then longest match, like
// HF tokenizers' added-token splitting). A byte trie keeps this linear in the text length.
class SpecialMatcher {
 public:
  void add(std::string_view text, int32_t id, bool control);
  // Length of the longest special token starting at text[pos] (0 if none); control tokens
  // count only when `allow_control`.
  size_t match(std::string_view text, size_t pos, bool allow_control, int32_t* id) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node index), sorted by byte
    int32_t token = -1;
    bool control = false;
  };
  std::vector<Node> nodes_{Node{}};
};

struct Vocab {
  std::vector<std::string> text;  // as stored in the GGUF
  std::vector<int32_t> type;
  std::vector<float> score;       // empty for BPE vocabularies without scores
  TokenIndex index;               // text -> id (first id wins on duplicates)
  int32_t bos = -1, eos = -1, unk = -1, eot = -1, eom = -1;
  bool add_bos = false;
  bool add_eos = false;           // with add_bos: the model's closing token too (BERT's [SEP])
  bool add_space_prefix = false;
  std::vector<uint8_t> eog;       // per id: ends generation
  SpecialMatcher specials;

  // Reads tokenizer.ggml.{tokens,token_type,scores,*_token_id,add_*}; `spm` selects the
  // defaults of SentencePiece models. Throws ModelFormatError on inconsistent metadata.
  static Vocab load(const io::GgufFile& file, bool spm);

  int32_t size() const { return static_cast<int32_t>(text.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < size(); }
  int32_t find(std::string_view s) const {
    auto it = index.find(s);
    return it == index.end() ? -1 : it->second;
  }
};

}  // namespace edgellm::tokenizer
