#include "tokenizer/tokenizer.h"

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const io::GgufFile& file) {
  const auto model = file.get_string("tokenizer.ggml.model");
  if (!model) throw ModelFormatError("missing tokenizer.ggml.model in " + file.path());
  if (*model == "gpt2") return make_bpe_tokenizer(file, Vocab::load(file, false));
  if (*model == "llama") return make_spm_tokenizer(file, Vocab::load(file, true));
  if (*model == "bert") return make_wpm_tokenizer(file, Vocab::load(file, false));
  throw ModelFormatError("unsupported tokenizer.ggml.model '" + *model + "' in " + file.path() +
                         " (supported: gpt2, llama, bert)");
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_bos, bool parse_special,
                                            std::span<const TextRange> plain) const {
  for (size_t i = 0; i < plain.size(); ++i)
    if (plain[i].begin > plain[i].end || plain[i].end > text.size() || (i > 0 && plain[i].begin < plain[i - 1].end))
      throw InvalidArgument("tokenizer: plain-text spans must be sorted, disjoint and inside the text");
  std::vector<int32_t> out;
  size_t next_span = 0;  // first span that does not end at or before pos
  if (add_bos && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  bool after_special = true;
  size_t start = 0;  // start of the pending plain-text fragment
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t id = -1;
    while (next_span < plain.size() && plain[next_span].end <= pos) ++next_span;
    size_t n = vocab_.specials.empty() ? 0 : vocab_.specials.match(text, pos, parse_special, &id);
    // A control-token match that touches a plain span is retried with control tokens off.
    if (n > 0 && parse_special && next_span < plain.size() && plain[next_span].begin < pos + n)
      n = vocab_.specials.match(text, pos, false, &id);
    if (n == 0) {
      ++pos;
      continue;
    }
    if (pos > start) {
      encode_fragment(text.substr(start, pos - start), after_special, out);
    }
    out.push_back(id);
    after_special = true;
    pos += n;
    start = pos;
  }
  if (start < text.size()) encode_fragment(text.substr(start), after_special, out);
  if (add_bos && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string VocabTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  bool at_start = true;
  for (int32_t id : ids) {
    if (!vocab_.valid(id)) throw InvalidArgument("token id " + std::to_string(id) +
                                                 " out of range [0, " +
                                                 std::to_string(vocab_.size()) + ")");
    const bool control = is_control(id);
    if (control && skip_special) continue;
    std::string_view piece = bytes_[id];
    // SentencePiece puts a space in front of the text; take it away again at the start.
    if (at_start && vocab_.add_space_prefix && !control && !piece.empty() && piece[0] == ' ')
      piece.remove_prefix(1);
    if (!control) at_start = false;
    out += piece;
  }
  return out;
}

std::string VocabTokenizer::token_bytes(int32_t id) const {
  if (!vocab_.valid(id)) throw InvalidArgument("token id " + std::to_string(id) + " out of range");
  return bytes_[id];
}

std::string VocabTokenizer::token_text(int32_t id) const {
  if (!vocab_.valid(id)) throw InvalidArgument("token id " + std::to_string(id) + " out of range");
  return vocab_.text[id];
}

std::optional<int32_t> VocabTokenizer::find_token(std::string_view text) const {
  const int32_t id = vocab_.find(text);
  if (id < 0) return std::nullopt;
  return id;
}

// ---- StreamDecoder ----

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tok_.is_control(id)) return {};
  pending_ += tok_.token_bytes(id);
  // Emit complete characters; hold back a consistent but truncated sequence at the end.
  // Bytes that can never complete become U+FFFD now, one per maximal ill-formed subpart
  // (the same rule flush() and sanitize_utf8() use).
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t need = 0;
    const size_t n = unicode::utf8_scan(pending_, i, &need);
    if (need > 0 && n == need) {
      out.append(pending_, i, n);
      i += n;
    } else if (need > 0 && i + n == pending_.size()) {
      break;  // wait for the rest of this character
    } else {
      out += "\xEF\xBF\xBD";
      i += n == 0 ? 1 : n;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace edgellm::tokenizer
