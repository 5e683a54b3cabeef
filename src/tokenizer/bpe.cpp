// Byte-level BPE ("gpt2" model): regex pre-tokenizer, bytes mapped to GPT-2's printable
// alphabet, then merges applied lowest rank first (ties: leftmost), as HF tokenizers does.
#include <queue>
#include <unordered_map>

#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

struct Merge {
  int32_t rank;
  int32_t result;
};

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeTokenizer final : public VocabTokenizer {
 public:
  BpeTokenizer(const io::GgufFile& f, Vocab v) : VocabTokenizer(std::move(v)) {
    const std::string pre_name = f.get_string("tokenizer.ggml.pre").value_or("default");
    pre_ = &PreTokenizer::from_name(pre_name);
    // Llama 3's tokenizer takes a whole pre-token from the vocabulary before merging.
    ignore_merges_ = pre_->ignore_merges();

    for (int b = 0; b < 256; ++b) byte_id_[b] = vocab_.find(unicode::byte_to_piece(static_cast<uint8_t>(b)));

    const auto* merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges) throw ModelFormatError("missing tokenizer.ggml.merges in " + f.path());
    merges_.reserve(merges->size() * 2);
    for (size_t r = 0; r < merges->size(); ++r) {
      const std::string& m = (*merges)[r];
      // "left right"; search from 1 so a left part that is itself a space cannot split wrongly.
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos)
        throw ModelFormatError("malformed merge '" + m + "' (rank " + std::to_string(r) + ") in " + f.path());
      const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
      const int32_t a = vocab_.find(left), b = vocab_.find(right);
      const int32_t c = vocab_.find(std::string(left) + std::string(right));
      if (a < 0 || b < 0 || c < 0) continue;  // merge of tokens missing from the vocabulary
      merges_.emplace(pair_key(a, b), Merge{static_cast<int32_t>(r), c});  // first rank wins
    }

    bytes_.resize(vocab_.size());
    for (int32_t id = 0; id < vocab_.size(); ++id) bytes_[id] = piece_bytes(id);
  }

 protected:
  void encode_fragment(std::string_view text, bool, std::vector<int32_t>& out) const override {
    for (const Span& s : pre_->split(text)) encode_word(text.substr(s.offset, s.len), out);
  }

 private:
  // Stored vocabulary text -> bytes: each code point of the byte-level alphabet is one byte;
  // control and user-defined tokens (and any stray code point) are literal UTF-8 text.
  std::string piece_bytes(int32_t id) const {
    const std::string& t = vocab_.text[id];
    const int32_t type = vocab_.type[id];
    if (type == kTypeControl || type == kTypeUserDefined || type == kTypeUnknown) return t;
    std::string out;
    for (const auto& u : unicode::decode_utf8(t)) {
      const int b = u.cp == unicode::kInvalid ? -1 : unicode::cp_to_byte(u.cp);
      if (b >= 0)
        out += static_cast<char>(b);
      else
        out.append(t, u.offset, u.len);
    }
    return out;
  }

  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    // A byte outside well-formed UTF-8 is a word of its own (pretokenize). Byte-level
    // vocabularies trained on valid text often lack such bytes (SmolLM2: 0xF5..0xFF, ...): then
    // it becomes U+FFFD, as a decoder would show it, instead of vanishing.
    if (word.size() == 1 && static_cast<uint8_t>(word[0]) >= 0x80 && byte_id_[static_cast<uint8_t>(word[0])] < 0) {
      encode_word("\xEF\xBF\xBD", out);
      return;
    }
    if (ignore_merges_) {
      std::string mapped;
      for (char ch : word) mapped += unicode::byte_to_piece(static_cast<uint8_t>(ch));
      if (const int32_t id = vocab_.find(mapped); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    // Symbols form a doubly linked list over the word's bytes.
    struct Sym {
      int32_t id;
      int32_t prev, next;
    };
    std::vector<Sym> syms;
    syms.reserve(word.size());
    for (char ch : word) {
      // A byte missing from the vocabulary (SmolLM2 lacks 0x1D, Falcon 0x0B) is dropped before
      // merging, as HF tokenizers (no unk token) does: its neighbours can merge across it.
      // Such text cannot round-trip.
      const int32_t id = byte_id_[static_cast<uint8_t>(ch)];
      if (id < 0) continue;
      const auto i = static_cast<int32_t>(syms.size());
      syms.push_back({id, i - 1, i + 1});
    }
    if (!syms.empty()) syms.back().next = -1;

    struct Cand {
      int32_t rank, pos, left, right;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](int32_t l) {
      if (l < 0) return;
      const int32_t r = syms[l].next;
      if (r < 0 || syms[l].id < 0 || syms[r].id < 0) return;
      auto it = merges_.find(pair_key(syms[l].id, syms[r].id));
      if (it != merges_.end()) heap.push({it->second.rank, l, syms[l].id, syms[r].id});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);

    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      Sym& l = syms[c.pos];
      // Stale if either side changed since the candidate was queued (a merge always changes
      // the left symbol's id, and a dead right symbol is no longer l.next).
      if (l.id != c.left || l.next < 0 || syms[l.next].id != c.right) continue;
      const int32_t r = l.next;
      l.id = merges_.at(pair_key(c.left, c.right)).result;
      l.next = syms[r].next;
      if (l.next >= 0) syms[l.next].prev = c.pos;
      syms[r].id = -2;  // dead
      consider(l.prev);
      consider(c.pos);
    }
    for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next)
      if (syms[i].id >= 0) out.push_back(syms[i].id);
  }

  const PreTokenizer* pre_ = nullptr;  // owned by the pre-tokenizer table
  bool ignore_merges_ = false;
  int32_t byte_id_[256];
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(const io::GgufFile& file, Vocab vocab) {
  return std::make_unique<BpeTokenizer>(file, std::move(vocab));
}

}  // namespace edgellm::tokenizer
