#include "server/logprobs_json.h"

#include <cmath>

namespace edgellm::server {
namespace {

// Valid UTF-8 kept, every other byte becomes U+FFFD (JSON needs valid text).
std::string utf8_or_replacement(const std::string& b) {
  std::string out;
  size_t i = 0;
  while (i < b.size()) {
    const auto c = static_cast<unsigned char>(b[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= b.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(b[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(b, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

ojson bytes_json(const std::string& b) {
  ojson a = ojson::array();
  for (char c : b) a.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return a;
}

// A non-finite log-probability (a masked token) is not JSON: OpenAI clients get -9999.
double finite(float x) { return std::isfinite(x) ? static_cast<double>(x) : -9999.0; }

}  // namespace

std::string logprob_token_string(const LogprobsStyle& s, int32_t id) {
  if (s.token_ids) return "token_id:" + std::to_string(id);
  return utf8_or_replacement(s.tok->token_bytes(id));
}

ojson chat_logprobs_json(const LogprobsStyle& s, const std::vector<sampling::PositionLogprobs>& lps) {
  ojson content = ojson::array();
  for (const auto& p : lps) {
    ojson top = ojson::array();
    for (const auto& t : p.top)
      top.push_back({{"token", logprob_token_string(s, t.id)}, {"logprob", finite(t.logprob)},
                     {"bytes", bytes_json(s.tok->token_bytes(t.id))}});
    content.push_back({{"token", logprob_token_string(s, p.id)}, {"logprob", finite(p.logprob)},
                       {"bytes", bytes_json(s.tok->token_bytes(p.id))}, {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

ojson completion_logprobs_json(const LogprobsStyle& s, const std::vector<int32_t>& prompt,
                               const std::vector<sampling::PositionLogprobs>& prompt_lps,
                               const std::vector<sampling::PositionLogprobs>& generated) {
  ojson tokens = ojson::array(), token_lps = ojson::array(), tops = ojson::array(), offsets = ojson::array();
  size_t offset = 0;
  auto add = [&](int32_t id, const sampling::PositionLogprobs* p, bool counts) {
    tokens.push_back(logprob_token_string(s, id));
    offsets.push_back(offset);
    if (counts) offset += code_points(utf8_or_replacement(s.tok->token_bytes(id)));
    if (!p) {
      token_lps.push_back(nullptr);
      tops.push_back(nullptr);
      return;
    }
    token_lps.push_back(finite(p->logprob));
    ojson top = ojson::object();
    for (const auto& t : p->top) {
      const std::string k = logprob_token_string(s, t.id);
      if (!top.contains(k)) top[k] = finite(t.logprob);
    }
    // The chosen token is always there too (OpenAI: up to logprobs + 1 entries).
    const std::string chosen = logprob_token_string(s, id);
    if (!p->top.empty() && !top.contains(chosen)) top[chosen] = finite(p->logprob);
    tops.push_back(std::move(top));
  };
  for (size_t i = 0; i < prompt.size(); ++i) {
    const bool auto_bos = i == 0 && s.tok->add_bos_default() && prompt[0] == s.tok->bos_id();
    add(prompt[i], i > 0 && i - 1 < prompt_lps.size() ? &prompt_lps[i - 1] : nullptr, !auto_bos);
  }
  for (const auto& p : generated) add(p.id, &p, true);
  return {{"tokens", std::move(tokens)}, {"token_logprobs", std::move(token_lps)}, {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

}  // namespace edgellm::server
