// SentencePiece-style BPE ("llama" model): spaces become U+2581, symbols start as single
// characters and the adjacent pair whose concatenation is the highest-scoring normal piece
// merges first (ties: leftmost). Characters missing from the vocabulary fall back to
// <0xNN> byte tokens.
#include <cstdio>
#include <queue>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581

class SpmTokenizer final : public VocabTokenizer {
 public:
  SpmTokenizer(const io::GgufFile& f, Vocab v) : VocabTokenizer(std::move(v)) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_id_[b] = vocab_.find(name);
    }
    bytes_.resize(vocab_.size());
    for (int32_t id = 0; id < vocab_.size(); ++id) bytes_[id] = piece_bytes(id);
  }

 protected:
  void encode_fragment(std::string_view raw, bool after_special, std::vector<int32_t>& out) const override {
    std::string text;
    text.reserve(raw.size() * 3 + 3);
    if (after_special && vocab_.add_space_prefix) text += kSpaceMarker;
    for (char ch : raw) {
      if (ch == ' ')
        text += kSpaceMarker;
      else
        text += ch;
    }

    struct Sym {
      uint32_t offset, len;  // bytes of `text`
      int32_t prev, next;
    };
    std::vector<Sym> syms;
    for (const auto& u : unicode::decode_utf8(text)) {
      const auto i = static_cast<int32_t>(syms.size());
      syms.push_back({u.offset, u.len, i - 1, i + 1});
    }
    if (syms.empty()) return;
    syms.back().next = -1;

    struct Cand {
      float score;
      int32_t left, right;
      uint32_t len;  // combined length when queued; a mismatch means the candidate is stale
      bool operator<(const Cand& o) const {
        return score != o.score ? score < o.score : left > o.left;  // max score, then leftmost
      }
    };
    std::priority_queue<Cand> heap;
    auto consider = [&](int32_t l) {
      if (l < 0) return;
      const int32_t r = syms[l].next;
      if (r < 0) return;
      const std::string_view piece(text.data() + syms[l].offset, syms[l].len + syms[r].len);
      const int32_t id = vocab_.find(piece);
      if (id < 0 || vocab_.type[id] != kTypeNormal) return;
      heap.push({vocab_.score[id], l, r, static_cast<uint32_t>(piece.size())});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) consider(i);

    while (!heap.empty()) {
      const Cand c = heap.top();
      heap.pop();
      Sym& l = syms[c.left];
      // Stale if either symbol was merged into something else meanwhile.
      if (l.len == 0 || l.next != c.right || l.len + syms[c.right].len != c.len) continue;
      Sym& r = syms[c.right];
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (l.next >= 0) syms[l.next].prev = c.left;
      consider(l.prev);
      consider(c.left);
    }

    for (int32_t i = 0; i >= 0; i = syms[i].next) {
      const std::string_view piece(text.data() + syms[i].offset, syms[i].len);
      const int32_t id = vocab_.find(piece);
      if (id >= 0 && (vocab_.type[id] == kTypeNormal || vocab_.type[id] == kTypeUserDefined)) {
        out.push_back(id);
        continue;
      }
      // Not a piece (only possible for a single character): one byte token per byte.
      for (char ch : piece) {
        const int32_t b = byte_id_[static_cast<uint8_t>(ch)];
        if (b >= 0)
          out.push_back(b);
        else if (vocab_.unk >= 0)
          out.push_back(vocab_.unk);
      }
    }
  }

 private:
  std::string piece_bytes(int32_t id) const {
    const std::string& t = vocab_.text[id];
    if (vocab_.type[id] == kTypeByte) {
      unsigned b = 0;
      if (t.size() == 6 && std::sscanf(t.c_str(), "<0x%02X>", &b) == 1) return std::string(1, static_cast<char>(b));
      return t;
    }
    if (vocab_.type[id] == kTypeControl || vocab_.type[id] == kTypeUnknown) return t;
    std::string out;
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
        out += ' ';
        i += kSpaceMarker.size();
      } else {
        out += t[i++];
      }
    }
    return out;
  }

  int32_t byte_id_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(const io::GgufFile& file, Vocab vocab) {
  return std::make_unique<SpmTokenizer>(file, std::move(vocab));
}

}  // namespace edgellm::tokenizer
