#include "json_test_support.h"

#include <algorithm>
#include <regex>

namespace edgellm::sampling::testing {

std::vector<std::string> synthetic_vocab() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.push_back(std::string(1, static_cast<char>(b)));
  const char* pieces[] = {
      "{", "{\"", "\":", "\": ", "\", \"", ", \"", ",\"", "\"}", "}}", "]}", "[]", "{}", "[\"", "\"]", "\n  ", "\n",
      "  ", "true", "false", "null", "tr", "ue", "nu", "fal", "se", "12", "3.5", "0.", "e+", "-1", "100", "\\n",
      "\\\"", "\\u00e9", "\\ud83d", "name", "\"name\"", "\"age\": ", "age", "tags", "hello", " world", "ab", "abc",
      "bc", "red", "\"red\"", "green", "blue", "fixed", "value", "children", "\"value\":", "id", "x", "Abc", "-123",
      "\xC3\xA9", "\xC3", "\xA9x", "caf\xC3\xA9", "\xE2\x82\xAC", "\xE2\x82", "\xAC\"", "\xF0\x9F\x98\x80",
      "\xF0\x9F", "\x98\x80", "\xED\xA0\x80", "\xC0\xAF", ":", ": ", ",", ", ", "\"\"", "[[", "]]", "[1, 2]"};
  for (const char* p : pieces) v.push_back(p);
  v.push_back("<|control|>-as-empty");
  v.back() = "";  // control token: empty piece, must never be allowed
  v.push_back("");  // EOG
  return v;
}

std::shared_ptr<const TokenTrie> synthetic_trie() {
  static const auto trie = std::make_shared<const TokenTrie>(
      synthetic_vocab(), std::vector<int32_t>{static_cast<int32_t>(synthetic_vocab().size() - 1)});
  return trie;
}

namespace {

int closing_score(const std::string& p) {
  if (p == "}" || p == "]" || p == "\"" || p == "\"}" || p == "}}" || p == "]}" || p == "\"]") return 1;
  if (p == "0" || p == "1" || p == "null" || p == "a" || p == "x" || p == "[]" || p == "{}") return 2;
  if (p == ",") return 4;
  return 3;
}

}  // namespace

WalkResult random_walk(Constraint& c, const TokenTrie& vocab, std::mt19937_64& rng, int budget, int max_steps,
                       int check_every) {
  WalkResult r;
  std::vector<uint8_t> allowed;
  const int32_t eog = vocab.eog().at(0);
  for (int step = 0; step < max_steps; ++step) {
    c.allowed_tokens(allowed);
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < vocab.n_vocab(); ++i)
      if (allowed[static_cast<size_t>(i)]) ids.push_back(i);
    if (ids.empty()) {
      r.failure = "dead end after '" + r.text + "'";
      return r;
    }
    if (step % check_every == 0) {
      for (int32_t i = 0; i < vocab.n_vocab(); ++i)
        if (c.allows(i) != (allowed[static_cast<size_t>(i)] != 0)) {
          r.failure = "trie walk and per-token check disagree on token " + std::to_string(i) + " after '" + r.text + "'";
          return r;
        }
    }
    int32_t pick;
    if (step >= budget && (rng() & 1)) {
      if (allowed[static_cast<size_t>(eog)]) {
        pick = eog;
      } else {
        int best = 99;
        std::vector<int32_t> cands;
        for (int32_t id : ids) {
          const int s = closing_score(vocab.piece(id));
          if (s < best) { best = s; cands.clear(); }
          if (s == best) cands.push_back(id);
        }
        pick = cands[rng() % cands.size()];
      }
    } else {
      pick = ids[rng() % ids.size()];
    }
    c.accept(pick);
    if (pick == eog) {
      r.finished = true;
      return r;
    }
    r.text += vocab.piece(pick);
  }
  r.failure = "did not finish within the step limit: '" + r.text + "'";
  return r;
}

namespace {

// Code points as wchar_t (UTF-32 on Linux) so std::wregex sees characters, not bytes.
std::wstring widen(const std::string& s) {
  std::wstring out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < n && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(static_cast<wchar_t>(cp));
    i += static_cast<size_t>(n);
  }
  return out;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

bool type_ok(const nlohmann::json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())));
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

}  // namespace

bool validate(const nlohmann::json& v, const nlohmann::json& s, const nlohmann::json& root, std::string* why) {
  auto no = [&](const std::string& m) {
    if (why) *why = m + " (value " + v.dump() + ")";
    return false;
  };
  if (s.is_boolean()) return s.get<bool>() ? true : no("false schema");
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    return validate(v, root.at(nlohmann::json::json_pointer(ref.substr(1))), root, why);
  }
  if (s.contains("allOf"))
    for (const auto& sub : s["allOf"])
      if (!validate(v, sub, root, why)) return false;
  if (s.contains("const") && v != s["const"]) return no("const mismatch");
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return no("not in enum");
  if (s.contains("anyOf")) {
    bool any = false;
    for (const auto& sub : s["anyOf"]) any = any || validate(v, sub, root, nullptr);
    if (!any) return no("no anyOf branch matches");
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const auto& sub : s["oneOf"]) n += validate(v, sub, root, nullptr);
    if (n != 1) return no("oneOf matched " + std::to_string(n) + " branches");
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_string()) ok = type_ok(v, s["type"]);
    else for (const auto& t : s["type"]) ok = ok || type_ok(v, t);
    if (!ok) return no("type mismatch, want " + s["type"].dump());
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return no("below minimum");
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return no("above maximum");
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return no("not above exclusiveMinimum");
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return no("not below exclusiveMaximum");
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && utf8_length(str) < s["minLength"].get<size_t>()) return no("too short");
    if (s.contains("maxLength") && utf8_length(str) > s["maxLength"].get<size_t>()) return no("too long");
    if (s.contains("pattern") && !std::regex_search(widen(str), std::wregex(widen(s["pattern"].get<std::string>()), std::regex::ECMAScript)))
      return no("pattern mismatch");
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return no("too few items");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return no("too many items");
    if (s.contains("items"))
      for (const auto& x : v)
        if (!validate(x, s["items"], root, why)) return false;
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& k : s["required"])
        if (!v.contains(k.get<std::string>())) return no("missing required " + k.get<std::string>());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (s.contains("properties") && s["properties"].contains(it.key())) {
        if (!validate(it.value(), s["properties"][it.key()], root, why)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!validate(it.value(), s["additionalProperties"], root, why)) return no("additional property " + it.key());
      }
    }
  }
  return true;
}

}  // namespace edgellm::sampling::testing
