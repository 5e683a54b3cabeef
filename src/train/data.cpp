#include "train/data.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace edgellm::train {
namespace {

// Why a parsed line is not a training conversation ("" if it is one).
std::string problem(const nlohmann::ordered_json& j) {
  if (!j.is_object()) return "not a JSON object";
  if (!j.contains("messages")) return "no \"messages\" field";
  const auto& m = j["messages"];
  if (!m.is_array() || m.empty()) return "\"messages\" is not a non-empty array";
  bool assistant = false;
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& msg = m[i];
    const std::string at = "message " + std::to_string(i + 1) + ": ";
    if (!msg.is_object()) return at + "not an object";
    if (!msg.contains("role") || !msg["role"].is_string()) return at + "no \"role\" string";
    const std::string role = msg["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      return at + "role '" + role + "' (expected system, user or assistant)";
    if (!msg.contains("content") || !msg["content"].is_string()) return at + "no \"content\" string";
    if (msg.contains("weight")) {
      const auto& w = msg["weight"];
      if (role != "assistant") return at + "\"weight\" is allowed on assistant messages only";
      if (!w.is_number_integer() || (w.get<int64_t>() != 0 && w.get<int64_t>() != 1))
        return at + "\"weight\" must be 0 or 1";
    }
    if (role == "assistant" && msg.value("weight", 1) != 0) assistant = true;
  }
  if (!assistant) return "no assistant message to learn from";
  return {};
}

// The first n messages, as the template sees them.
std::vector<chat::Message> first(const std::vector<chat::Message>& msgs, size_t n) {
  return {msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(n)};
}

// A checked line (problem() found nothing) as engine types.
Conversation conversation(const nlohmann::ordered_json& j, int64_t line) {
  Conversation c;
  c.line = line;
  for (const auto& m : j["messages"]) {
    c.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    c.learn.push_back(c.messages.back().role == "assistant" && m.value("weight", 1) != 0);
  }
  return c;
}

}  // namespace

std::vector<Conversation> parse_chat_jsonl(const std::string& text, const std::string& name) {
  std::vector<Conversation> out;
  std::vector<std::string> errors;
  size_t n_errors = 0;
  std::istringstream in(text);
  std::string line;
  int64_t no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string why;
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(line);
      why = problem(j);
    } catch (const nlohmann::json::exception& e) {
      why = std::string("invalid JSON (") + e.what() + ")";
    }
    if (why.empty()) {
      out.push_back(conversation(j, no));
    } else if (++n_errors <= 20) {
      errors.push_back(name + ":" + std::to_string(no) + ": " + why);
    }
  }
  if (n_errors > 0) {
    std::string msg = std::to_string(n_errors) + " malformed line" + (n_errors > 1 ? "s" : "") + " in " + name +
                      " (each line must be {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}):";
    for (const auto& e : errors) msg += "\n  " + e;
    if (n_errors > errors.size()) msg += "\n  ... and " + std::to_string(n_errors - errors.size()) + " more";
    throw DataError(msg);
  }
  if (out.empty()) throw DataError(name + " holds no conversations");
  return out;
}

std::vector<Conversation> read_chat_jsonl(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_chat_jsonl(ss.str(), path);
}

Example render_conversation(const Conversation& conv, const chat::ChatFormatter& fmt,
                            const tokenizer::Tokenizer& tok) {
  const auto& msgs = conv.messages;
  const std::string where = "line " + std::to_string(conv.line) + ": ";
  const chat::RenderedPrompt full = fmt.format_protected(msgs, false);
  // Byte ranges of the text to learn: each trained assistant message's rendering, i.e. what the
  // conversation up to it adds after the generation prompt that precedes it.
  std::vector<std::pair<size_t, size_t>> learn;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (!conv.learn[i]) continue;
    const std::string before = fmt.format(first(msgs, i), true);
    const std::string upto = fmt.format(first(msgs, i + 1), false);
    if (upto.compare(0, before.size(), before) != 0 || full.text.compare(0, upto.size(), upto) != 0)
      throw DataError(where + "the chat template does not render this conversation turn by turn, so the "
                              "assistant's tokens cannot be located");
    if (upto.size() > before.size()) learn.emplace_back(before.size(), upto.size());
  }
  // Tokenize piece by piece (context / learned alternately) so every token belongs to one kind.
  std::vector<size_t> cuts{0};
  for (const auto& [b, e] : learn) {
    if (b > cuts.back()) cuts.push_back(b);
    cuts.push_back(e);
  }
  if (cuts.back() < full.text.size()) cuts.push_back(full.text.size());
  Example ex;
  bool bos = false;
  if (tok.add_bos_default() && tok.bos_id() >= 0) {
    const std::string b = tok.token_text(tok.bos_id());
    bos = b.empty() || full.text.compare(0, b.size(), b) != 0;
  }
  for (size_t s = 0; s + 1 < cuts.size(); ++s) {
    const size_t b = cuts[s], e = cuts[s + 1];
    bool is_learned = false;
    for (const auto& [lb, le] : learn) is_learned |= lb == b && le == e;
    // Message text stays text: control tokens are recognised only in the template's own text.
    std::vector<tokenizer::Tokenizer::TextRange> plain;
    for (const auto& [pb, pe] : full.message_spans)
      if (pe > b && pb < e) plain.push_back({std::max(pb, b) - b, std::min(pe, e) - b});
    const auto ids = tok.encode(std::string_view(full.text).substr(b, e - b), bos && s == 0, true, plain);
    for (int32_t id : ids) {
      ex.tokens.push_back(id);
      ex.target.push_back(is_learned ? 1 : 0);
    }
  }
  return ex;
}

}  // namespace edgellm::train
