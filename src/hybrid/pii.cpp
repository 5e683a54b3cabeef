// PiiDetector: runs the built-in scanners, user regexes and keywords, then keeps a
// non-overlapping set of spans preferring the more specific finding.
#include "hybrid/pii.h"

#include <algorithm>
#include <map>

#include "hybrid/pii_scan.h"
#include "util/error.h"

namespace edgellm::hybrid {

namespace {
constexpr std::string_view kNames[kPiiKindCount] = {"EMAIL", "PHONE", "ID_CARD", "BANK_CARD", "IPV4",
                                                   "IPV6",  "PLATE", "PATTERN", "KEYWORD"};

// Lower number wins an overlap.
int priority(PiiKind k) {
  switch (k) {
    case PiiKind::Pattern: return 0;
    case PiiKind::Keyword: return 1;
    case PiiKind::IdCard: return 2;
    case PiiKind::BankCard: return 3;
    case PiiKind::Email: return 4;
    case PiiKind::IPv6: return 5;
    case PiiKind::Phone: return 6;
    case PiiKind::IPv4: return 7;
    case PiiKind::Plate: return 8;
  }
  return 9;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Placeholder stems must be [A-Z0-9_] so the stream restorer can recognise them.
std::string sanitize_label(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (detail::is_alnum(c)) out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? std::string("PATTERN") : out;
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Folds full-width ASCII forms (U+FF01..U+FF5E, UTF-8 EF BC 81..EF BD 9E) and the ideographic
// space (U+3000) to ASCII. Returns false (and leaves the outputs empty) when there are none.
bool fold_fullwidth(std::string_view s, std::string* out, std::vector<size_t>* orig) {
  auto fw = [&](size_t i) -> int {  // folded ASCII char at i, or 0
    if (i + 2 >= s.size()) return 0;
    unsigned char a = s[i], b = s[i + 1], c = s[i + 2];
    if (a == 0xEF && b == 0xBC && c >= 0x81 && c <= 0xBF) return c - 0x81 + 0x21;
    if (a == 0xEF && b == 0xBD && c >= 0x80 && c <= 0x9E) return c - 0x80 + 0x60;
    if (a == 0xE3 && b == 0x80 && c == 0x80) return ' ';
    return 0;
  };
  bool any = false;
  for (size_t i = 0; i + 2 < s.size() && !any; ++i) any = fw(i) != 0;
  if (!any) return false;
  out->reserve(s.size());
  orig->reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    int f = fw(i);
    if (f) {
      out->push_back(static_cast<char>(f));
      orig->push_back(i);
      i += 3;
    } else {
      out->push_back(s[i]);
      orig->push_back(i);
      ++i;
    }
  }
  orig->push_back(s.size());
  return true;
}
}  // namespace

std::string pii_label(std::string_view pattern_name) { return sanitize_label(pattern_name); }

std::string_view pii_kind_name(PiiKind kind) { return kNames[static_cast<size_t>(kind)]; }

bool pii_kind_from_name(std::string_view name, PiiKind* out) {
  for (size_t k = 0; k < kPiiKindCount; ++k) {
    std::string_view n = kNames[k];
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < n.size() && eq; ++i) {
      char c = name[i] == '-' ? '_' : name[i];
      eq = lower(c) == lower(n[i]);
    }
    if (eq) {
      *out = static_cast<PiiKind>(k);
      return true;
    }
  }
  return false;
}

PiiDetector::PiiDetector(PiiConfig config) : config_(std::move(config)) {
  for (auto& p : config_.patterns) {
    if (p.regex.empty()) throw InvalidArgument("PII pattern '" + p.name + "' has an empty regex");
    try {
      compiled_.emplace_back(p.regex, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw InvalidArgument("PII pattern '" + p.name + "': invalid regex '" + p.regex + "': " + e.what());
    }
    p.name = sanitize_label(p.name);
  }
  config_.keywords.erase(std::remove(config_.keywords.begin(), config_.keywords.end(), std::string()),
                         config_.keywords.end());
}

std::vector<PiiSpan> PiiDetector::scan(std::string_view text) const {
  struct Cand {
    detail::Candidate c;
    size_t label_index;  // user pattern index for Pattern
  };
  std::vector<detail::Candidate> raw;
  auto on = [&](PiiKind k) { return config_.enabled[static_cast<size_t>(k)]; };
  // Chinese input methods often produce full-width forms ("１３８１２３４５６７８", "＠"): the
  // built-in scanners run on an ASCII-folded copy and spans are mapped back to the original.
  std::string folded;
  std::vector<size_t> orig;  // folded byte -> original byte offset (size folded + 1)
  std::string_view scan_text = text;
  if (fold_fullwidth(text, &folded, &orig)) scan_text = folded;
  if (on(PiiKind::Email)) detail::scan_emails(scan_text, raw);
  if (on(PiiKind::Phone)) detail::scan_phones(scan_text, raw);
  if (on(PiiKind::IdCard)) detail::scan_id_cards(scan_text, raw);
  if (on(PiiKind::BankCard)) detail::scan_bank_cards(scan_text, raw);
  if (on(PiiKind::IPv4)) detail::scan_ipv4(scan_text, raw);
  if (on(PiiKind::IPv6)) detail::scan_ipv6(scan_text, raw);
  if (on(PiiKind::Plate)) detail::scan_plates(scan_text, config_.western_plates, raw);
  if (!orig.empty())
    for (auto& c : raw) {
      c.begin = orig[c.begin];
      c.end = orig[c.end];
    }

  std::vector<Cand> cands;
  cands.reserve(raw.size());
  for (auto& c : raw) cands.push_back({c, 0});

  if (on(PiiKind::Pattern)) {
    // libstdc++'s std::regex recurses per character and can exhaust the stack on long inputs,
    // so user patterns run per line, and over-long lines in overlapping windows. A pattern that
    // still fails marks the whole window as a finding: privacy fails closed.
    constexpr size_t kWindow = 8192, kOverlap = 512;
    auto snap = [&](size_t& b, size_t& e) {
      while (b > 0 && b < text.size() && is_continuation(text[b])) --b;
      while (e < text.size() && is_continuation(text[e])) ++e;
    };
    size_t line_start = 0;
    while (line_start <= text.size()) {
      size_t nl = text.find('\n', line_start);
      size_t line_end = nl == std::string_view::npos ? text.size() : nl;
      for (size_t w = line_start; w < line_end || w == line_start; w += kWindow - kOverlap) {
        size_t we = std::min(line_end, w + kWindow);
        for (size_t p = 0; p < compiled_.size(); ++p) {
          try {
            auto it = std::cregex_iterator(text.data() + w, text.data() + we, compiled_[p]);
            for (; it != std::cregex_iterator(); ++it) {
              size_t b = w + static_cast<size_t>(it->position(0));
              size_t e = b + static_cast<size_t>(it->length(0));
              if (e == b) continue;
              snap(b, e);  // a byte-level regex may cut a multi-byte character
              cands.push_back({{PiiKind::Pattern, b, e}, p});
            }
          } catch (const std::regex_error&) {
            size_t b = w, e = we;
            snap(b, e);
            if (e > b) cands.push_back({{PiiKind::Pattern, b, e}, p});
          }
        }
        if (we >= line_end) break;
      }
      if (nl == std::string_view::npos) break;
      line_start = nl + 1;
    }
  }
  if (on(PiiKind::Keyword)) {
    for (const auto& kw : config_.keywords) {
      // ASCII keywords must stand as words ("Ace" does not match "face"); others match anywhere
      // (UTF-8 is self-synchronising, so a byte match is a character match).
      bool word_front = detail::is_word(kw.front()), word_back = detail::is_word(kw.back());
      for (size_t i = 0; i + kw.size() <= text.size(); ++i) {
        bool eq = true;
        for (size_t k = 0; k < kw.size() && eq; ++k) eq = lower(text[i + k]) == lower(kw[k]);
        if (!eq) continue;
        size_t e = i + kw.size();
        if (word_front && i > 0 && detail::is_word(text[i - 1])) continue;
        if (word_back && e < text.size() && detail::is_word(text[e])) continue;
        cands.push_back({{PiiKind::Keyword, i, e}, 0});
        i = e - 1;
      }
    }
  }

  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
    int pa = priority(a.c.kind), pb = priority(b.c.kind);
    if (pa != pb) return pa < pb;
    size_t la = a.c.end - a.c.begin, lb = b.c.end - b.c.begin;
    if (la != lb) return la > lb;
    return a.c.begin < b.c.begin;
  });
  std::map<size_t, size_t> taken;  // begin -> end of accepted spans
  std::vector<PiiSpan> spans;
  for (const auto& cd : cands) {
    const auto& c = cd.c;
    auto it = taken.lower_bound(c.end);  // first accepted span starting at/after our end
    if (it != taken.begin() && std::prev(it)->second > c.begin) continue;
    taken.emplace(c.begin, c.end);
    PiiSpan s;
    s.kind = c.kind;
    s.begin = c.begin;
    s.end = c.end;
    s.value = std::string(text.substr(c.begin, c.end - c.begin));
    s.label = c.kind == PiiKind::Pattern ? config_.patterns[cd.label_index].name
                                         : std::string(pii_kind_name(c.kind));
    spans.push_back(std::move(s));
  }
  std::sort(spans.begin(), spans.end(), [](const PiiSpan& a, const PiiSpan& b) { return a.begin < b.begin; });
  return spans;
}

}  // namespace edgellm::hybrid
