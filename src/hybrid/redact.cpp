#include "hybrid/redact.h"

namespace edgellm::hybrid {

std::string Redactor::redact(std::string_view text, const std::vector<PiiSpan>& spans) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const auto& s : spans) {
    if (s.begin < pos || s.end > text.size() || s.begin >= s.end) continue;  // defensive
    out.append(text.substr(pos, s.begin - pos));
    std::string key = s.label;
    key += '\0';
    key += s.value;
    auto it = by_value_.find(key);
    if (it == by_value_.end()) {
      std::string ph = "[" + s.label + "_" + std::to_string(++next_index_[s.label]) + "]";
      by_placeholder_[ph] = s.value;
      longest_ = std::max(longest_, ph.size());
      it = by_value_.emplace(key, ph).first;
    }
    out += it->second;
    pos = s.end;
  }
  out.append(text.substr(pos));
  return out;
}

namespace {
// Placeholder at `pos` of `s`, if any.
const std::pair<const std::string, std::string>* match_at(const std::map<std::string, std::string>& m,
                                                          std::string_view s, size_t pos) {
  // Keys start with '[' and end with ']': find the closing bracket and look the whole key up.
  size_t close = s.find(']', pos);
  if (close == std::string_view::npos) return nullptr;
  auto it = m.find(std::string(s.substr(pos, close - pos + 1)));
  return it == m.end() ? nullptr : &*it;
}

// True if s[pos..] is a proper prefix of some placeholder (so it may complete later).
bool partial_at(const std::map<std::string, std::string>& m, std::string_view s, size_t pos,
                size_t longest) {
  std::string_view tail = s.substr(pos);
  if (tail.size() >= longest || tail.find(']') != std::string_view::npos) return false;
  auto it = m.lower_bound(std::string(tail));
  return it != m.end() && it->first.size() > tail.size() && it->first.compare(0, tail.size(), tail) == 0;
}
}  // namespace

std::string Redactor::restore(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t b = text.find('[', pos);
    if (b == std::string_view::npos) break;
    out.append(text.substr(pos, b - pos));
    // Only look as far as the longest placeholder so a stray '[' costs O(longest).
    std::string_view window = text.substr(b, longest_);
    if (auto* m = match_at(by_placeholder_, window, 0)) {
      out += m->second;
      pos = b + m->first.size();
    } else {
      out += '[';
      pos = b + 1;
    }
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

std::string StreamRestorer::push(std::string_view chunk) {
  pending_.append(chunk);
  const auto& m = r_.mapping();
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    size_t b = pending_.find('[', pos);
    if (b == std::string::npos) {
      out.append(pending_, pos, std::string::npos);
      pos = pending_.size();
      break;
    }
    out.append(pending_, pos, b - pos);
    std::string_view window = std::string_view(pending_).substr(b, r_.longest_placeholder());
    if (auto* hit = match_at(m, window, 0)) {
      out += hit->second;
      pos = b + hit->first.size();
    } else if (partial_at(m, pending_, b, r_.longest_placeholder())) {
      pos = b;  // hold "[EMA..." until more arrives
      break;
    } else {
      out += '[';
      pos = b + 1;
    }
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamRestorer::finish() {
  std::string out = r_.restore(pending_);
  pending_.clear();
  return out;
}

}  // namespace edgellm::hybrid
