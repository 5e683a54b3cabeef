#pragma once
// BERT's text normalization and word splitting, as HF's BertNormalizer (clean_text,
// handle_chinese_chars, strip_accents defaulting to lowercase, lowercase) followed by
// BertPreTokenizer.
#include <cstdint>
#include <string_view>
#include <vector>

namespace edgellm::tokenizer {

struct BertOptions {
  bool lowercase = true;
  bool strip_accents = true;  // NFD, then drop nonspacing marks (Mn)
};

// The words of `text` as code points: control and format characters (and bytes outside
// well-formed UTF-8) dropped, CJK ideographs made words of their own, accents stripped and
// case folded as asked, split at whitespace (dropped) and around each punctuation character.
std::vector<std::vector<uint32_t>> bert_words(std::string_view text, const BertOptions& options);

}  // namespace edgellm::tokenizer
