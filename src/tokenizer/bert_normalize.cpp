#include "tokenizer/bert_normalize.h"

#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

// BERT's "Chinese character" blocks: CJK Unified Ideographs and their extensions, and the
// compatibility ideographs (not Hiragana, Katakana or Hangul).
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BERT's "control" characters: Cc, Cf, Co and Cs, but not unassigned code points (Cn), which
// HF keeps (and WordPiece then maps to [UNK]).
bool is_other(uint32_t cp) {
  return (unicode::classify(cp) & unicode::kControl) || (unicode::detail(cp) & unicode::kFormatOrPrivate);
}

bool is_punctuation(uint32_t cp) {
  const bool ascii = (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') ||
                     (cp >= '{' && cp <= '~');
  return ascii || (unicode::classify(cp) & unicode::kPunct);
}

}  // namespace

std::vector<std::vector<uint32_t>> bert_words(std::string_view text, const BertOptions& o) {
  // Normalize to code points where whitespace is a single ' '.
  std::vector<uint32_t> norm, tmp;
  for (const auto& u : unicode::decode_utf8(text)) {
    const uint32_t cp = u.cp;
    if (cp == unicode::kInvalid || cp == 0 || cp == 0xFFFD) continue;
    const bool ws_control = cp == '\t' || cp == '\n' || cp == '\r';
    if (!ws_control && is_other(cp)) continue;
    if (ws_control || unicode::is_whitespace(cp)) {
      norm.push_back(' ');
      continue;
    }
    if (is_cjk(cp)) {  // a word of its own
      norm.push_back(' ');
      norm.push_back(cp);
      norm.push_back(' ');
      continue;
    }
    tmp.clear();
    if (o.strip_accents)
      unicode::append_nfd(cp, tmp);
    else
      tmp.push_back(cp);
    for (uint32_t c : tmp) {
      if (o.strip_accents && (unicode::detail(c) & unicode::kMn)) continue;
      if (o.lowercase)
        unicode::append_lower(c, norm);
      else
        norm.push_back(c);
    }
  }
  std::vector<std::vector<uint32_t>> words;
  std::vector<uint32_t> word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (uint32_t cp : norm) {
    if (unicode::is_whitespace(cp)) {
      flush();
    } else if (is_punctuation(cp)) {
      flush();
      words.push_back({cp});
    } else {
      word.push_back(cp);
    }
  }
  flush();
  return words;
}

}  // namespace edgellm::tokenizer
