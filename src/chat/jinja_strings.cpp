// Python string semantics the chat templates rely on (strip, split, case mapping).
#include "chat/jinja_strings.h"

#include <algorithm>

#include "chat/jinja_value.h"

namespace edgellm::chat::jinja::pystr {

namespace {
uint32_t to_upper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}
uint32_t to_lower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}
bool is_cased(uint32_t c) { return to_upper(c) != c || to_lower(c) != c; }

std::string map_cps(const std::string& s, uint32_t (*f)(uint32_t)) {
  std::vector<uint32_t> cps = utf8_decode(s);
  for (auto& c : cps) c = f(c);
  return utf8_encode(cps);
}
}  // namespace

bool is_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string upper(const std::string& s) { return map_cps(s, to_upper); }
std::string lower(const std::string& s) { return map_cps(s, to_lower); }

std::string title(const std::string& s) {
  std::vector<uint32_t> cps = utf8_decode(s);
  bool prev_cased = false;
  for (auto& c : cps) {
    c = prev_cased ? to_lower(c) : to_upper(c);
    prev_cased = is_cased(c);
  }
  return utf8_encode(cps);
}

std::string capitalize(const std::string& s) {
  std::vector<uint32_t> cps = utf8_decode(s);
  for (size_t k = 0; k < cps.size(); ++k) cps[k] = k == 0 ? to_upper(cps[k]) : to_lower(cps[k]);
  return utf8_encode(cps);
}

std::string strip(const std::string& s, const std::string* chars, bool left, bool right) {
  std::vector<uint32_t> cps = utf8_decode(s);
  std::vector<uint32_t> set;
  if (chars) set = utf8_decode(*chars);
  auto strippable = [&](uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_space(c);
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strippable(cps[b])) ++b;
  if (right)
    while (e > b && strippable(cps[e - 1])) --e;
  return utf8_encode(std::vector<uint32_t>(cps.begin() + b, cps.begin() + e));
}

std::vector<std::string> split(const std::string& s, const std::string* sep, long maxsplit,
                               bool from_right) {
  std::vector<std::string> out;
  if (sep) {
    if (from_right) {
      size_t end = s.size();
      while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
        if (end < sep->size()) break;
        size_t p = s.rfind(*sep, end - sep->size());
        if (p == std::string::npos) break;
        out.push_back(s.substr(p + sep->size(), end - p - sep->size()));
        end = p;
      }
      out.push_back(s.substr(0, end));
      std::reverse(out.begin(), out.end());
      return out;
    }
    size_t start = 0;
    while (maxsplit < 0 || static_cast<long>(out.size()) < maxsplit) {
      size_t p = s.find(*sep, start);
      if (p == std::string::npos) break;
      out.push_back(s.substr(start, p - start));
      start = p + sep->size();
    }
    out.push_back(s.substr(start));
    return out;
  }
  // Whitespace split: runs of whitespace separate, no empty strings.
  std::vector<uint32_t> cps = utf8_decode(s);
  std::vector<std::pair<size_t, size_t>> words;
  size_t k = 0;
  while (k < cps.size()) {
    while (k < cps.size() && is_space(cps[k])) ++k;
    if (k >= cps.size()) break;
    size_t b = k;
    while (k < cps.size() && !is_space(cps[k])) ++k;
    words.emplace_back(b, k);
  }
  auto word = [&](size_t b, size_t e) {
    return utf8_encode(std::vector<uint32_t>(cps.begin() + b, cps.begin() + e));
  };
  if (maxsplit < 0 || static_cast<size_t>(maxsplit) >= words.size()) {
    for (auto [b, e] : words) out.push_back(word(b, e));
    return out;
  }
  if (from_right) {
    size_t first = words.size() - maxsplit;
    size_t e = words[first - 1].second;
    out.push_back(word(0, e));
    std::string head = strip(out.back(), nullptr, true, false);
    out.back() = head;
    for (size_t w = first; w < words.size(); ++w) out.push_back(word(words[w].first, words[w].second));
    return out;
  }
  for (long w = 0; w < maxsplit; ++w) out.push_back(word(words[w].first, words[w].second));
  out.push_back(strip(word(words[maxsplit].first, cps.size()), nullptr, false, true));
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& repl, long count) {
  std::string out;
  if (old.empty()) {  // Python inserts repl between every character
    std::vector<uint32_t> cps = utf8_decode(s);
    long done = 0;
    for (size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (k < cps.size()) append_utf8(out, cps[k]);
    }
    return out;
  }
  size_t start = 0;
  long done = 0;
  while (count < 0 || done < count) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += repl;
    start = p + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

size_t length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool is_lower(const std::string& s) {
  bool any = false;
  for (uint32_t c : utf8_decode(s)) {
    if (to_lower(c) != c) return false;
    if (to_upper(c) != c) any = true;
  }
  return any;
}
bool is_upper(const std::string& s) {
  bool any = false;
  for (uint32_t c : utf8_decode(s)) {
    if (to_upper(c) != c) return false;
    if (to_lower(c) != c) any = true;
  }
  return any;
}

}  // namespace edgellm::chat::jinja::pystr
