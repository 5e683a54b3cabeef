#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

// One piece as code points with their byte offsets (relative to the text).
struct Units {
  std::vector<uint32_t> cps;
  std::vector<uint32_t> offset;  // cps.size() + 1 entries: the last one is the piece's end
};

// Decodes a piece; in byte mode each byte is one unit (its GPT-2 alphabet character). Returns
// false for a piece that is a single invalid byte, which no step splits.
bool decode_piece(std::string_view text, Span p, bool bytes, Units& u) {
  u.cps.clear();
  u.offset.clear();
  if (bytes) {
    for (uint32_t i = 0; i < p.len; ++i) {
      u.cps.push_back(unicode::byte_to_cp(static_cast<uint8_t>(text[p.offset + i])));
      u.offset.push_back(p.offset + i);
    }
  } else {
    for (const auto& c : unicode::decode_utf8(text.substr(p.offset, p.len))) {
      if (c.cp == unicode::kInvalid) return false;
      u.cps.push_back(c.cp);
      u.offset.push_back(p.offset + c.offset);
    }
  }
  u.offset.push_back(p.offset + p.len);
  return true;
}

void apply(const PreStep& step, const Units& u, std::vector<Span>& out) {
  const size_t n = u.cps.size();
  auto emit = [&](size_t from, size_t to) {
    out.push_back({u.offset[from], u.offset[to] - u.offset[from]});
  };
  if (step.kind == PreStep::kBuiltin) {
    for (size_t i = 0; i < n;) {
      const size_t len = builtin_match(step.builtin, u.cps, i, n);
      emit(i, i + len);
      i += len;
    }
    return;
  }
  size_t pos = 0;
  Regex::Match m;
  while (pos < n && step.regex->find(u.cps, pos, n, &m)) {
    if (m.begin > pos) emit(pos, m.begin);
    emit(m.begin, m.end);
    pos = m.end;
  }
  if (pos < n) emit(pos, n);
}

}  // namespace

std::vector<Span> PreTokenizer::split(std::string_view text) const {
  // Well-formed stretches and single invalid bytes.
  std::vector<Span> pieces;
  const std::vector<unicode::CodeUnit> units = unicode::decode_utf8(text);
  size_t start = 0;
  for (size_t i = 0; i <= units.size(); ++i) {
    if (i == units.size() || units[i].cp == unicode::kInvalid) {
      if (i > start)
        pieces.push_back({units[start].offset, units[i - 1].offset + units[i - 1].len - units[start].offset});
      if (i < units.size()) pieces.push_back({units[i].offset, 1});
      start = i + 1;
    }
  }
  std::vector<Span> next;
  Units u;
  bool bytes = false;
  for (const PreStep& step : steps_) {
    if (step.kind == PreStep::kByteLevel) {
      bytes = true;
      continue;
    }
    next.clear();
    for (const Span& p : pieces) {
      if (decode_piece(text, p, bytes, u))
        apply(step, u, next);
      else
        next.push_back(p);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace edgellm::tokenizer
