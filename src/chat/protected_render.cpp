// ChatFormatter::format_protected: locate message text inside a rendered prompt.
#include <cctype>

#include "chat/chat.h"

namespace edgellm::chat {
namespace {

// U+E000 / U+E001 (private use) around a decimal index: no template treats them specially.
constexpr std::string_view kOpen = "\xEE\x80\x80" "edgellm-text-";
constexpr std::string_view kClose = "\xEE\x80\x81";

// Replaces every message text (text content, or the "text" of content parts) with a marker
// and returns the originals in marker order (the order of message_texts).
std::vector<std::string> mark_texts(std::vector<Message>& messages) {
  std::vector<std::string> texts;
  auto mark = [&](std::string& v) {
    texts.push_back(v);
    v = std::string(kOpen) + std::to_string(texts.size() - 1) + std::string(kClose);
  };
  for (auto& m : messages) {
    if (m.content_kind == ContentKind::Text) {
      mark(m.content);
    } else if (m.content_kind == ContentKind::Parts) {
      for (auto& part : m.parts)
        if (Value* t = part.find("text"); t && t->is_string()) mark(t->s);
    }
  }
  return texts;
}

// Puts the texts back in place of their markers; false if a marker is malformed.
bool unmark(std::string_view marked, const std::vector<std::string>& texts, std::string& out,
            std::vector<std::pair<size_t, size_t>>& spans) {
  size_t pos = 0;
  for (;;) {
    const size_t at = marked.find(kOpen, pos);
    out.append(marked.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) return true;
    size_t p = at + kOpen.size(), idx = 0, digits = 0;
    while (p < marked.size() && std::isdigit(static_cast<unsigned char>(marked[p])) && digits < 9)
      idx = idx * 10 + static_cast<size_t>(marked[p++] - '0'), ++digits;
    if (digits == 0 || idx >= texts.size() || marked.substr(p, kClose.size()) != kClose) return false;
    if (!texts[idx].empty()) spans.emplace_back(out.size(), out.size() + texts[idx].size());
    out += texts[idx];
    pos = p + kClose.size();
  }
}

}  // namespace

RenderedPrompt ChatFormatter::format_protected(const std::vector<Message>& messages,
                                               bool add_generation_prompt, const Value& tools) const {
  RenderedPrompt r;
  r.text = format(messages, add_generation_prompt, tools);
  std::vector<Message> marked = messages;
  const auto texts = mark_texts(marked);
  if (texts.empty()) return r;
  std::string with_markers;
  try {
    with_markers = format(marked, add_generation_prompt, tools);
  } catch (const std::exception&) {  // the template inspected the text and objected
    r.spans_known = false;
    return r;
  }
  std::string rebuilt;
  if (!unmark(with_markers, texts, rebuilt, r.message_spans) || rebuilt != r.text) {
    r.message_spans.clear();
    r.spans_known = false;
  }
  return r;
}

}  // namespace edgellm::chat
