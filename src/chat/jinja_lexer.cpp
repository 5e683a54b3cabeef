// Jinja lexer. Mirrors jinja2's lexer rules closely because whitespace handling decides
// byte-identical output.
#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace edgellm::chat::jinja {

namespace {

constexpr size_t kMaxTagTokens = 8192;

[[noreturn]] void syntax_error(const std::string& msg, Loc loc) {
  throw TemplateError(TemplateError::Kind::Syntax, msg, loc);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.splitlines + "\n".join: every line break becomes "\n"; a final break is dropped
// unless keep_trailing_newline.
std::string normalize_newlines(const std::string& s, bool keep_trailing) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0, n = s.size();
  bool ended_with_break = false;
  while (i < n) {
    unsigned char c = s[i];
    size_t brk = 0;  // length of the line break at i
    if (c == '\r') brk = (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
    else if (c == '\n' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e) brk = 1;
    else if (c == 0xC2 && i + 1 < n && static_cast<unsigned char>(s[i + 1]) == 0x85) brk = 2;
    else if (c == 0xE2 && i + 2 < n && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
             (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9))
      brk = 3;
    if (brk) {
      out += '\n';
      i += brk;
      ended_with_break = true;
    } else {
      out += static_cast<char>(c);
      ++i;
      ended_with_break = false;
    }
  }
  if (ended_with_break && !keep_trailing) out.pop_back();
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python unicode-escape decoding of a string literal body.
std::string decode_string(const std::string& body, Loc loc) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 0; k < len; ++k) {
          int h = i + 1 + k < body.size() ? hex_value(body[i + 1 + k]) : -1;
          if (h < 0) syntax_error("truncated \\" + std::string(1, e) + " escape in string literal", loc);
          cp = cp * 16 + h;
        }
        if (cp > 0x10FFFF) syntax_error("illegal Unicode character in string literal", loc);
        i += len;
        append_utf8(out, cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            cp = cp * 8 + (body[++i] - '0');
          append_utf8(out, cp);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(const std::string& src, const LexOptions& opt) : s_(src), opt_(opt) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < s_.size(); ++i)
      if (s_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      size_t tag = find_tag(pos);
      std::string text = s_.substr(pos, tag == std::string::npos ? std::string::npos : tag - pos);
      if (tag == std::string::npos) {
        emit_data(text, pos);
        break;
      }
      char kind = s_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < s_.size() ? s_[tag + 2] : 0;
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && is_space(text[end - 1])) --end;
        text.resize(end);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            std::all_of(text.begin() + l_pos, text.end(), is_space))
          text.resize(l_pos);
      }
      emit_data(text, pos);
      size_t body = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') pos = lex_comment(tag, body);
      else if (kind == '%' && is_raw(body)) pos = lex_raw(tag, body);
      else pos = lex_tag(kind == '%', tag, body);
      line_starting = pos > 0 && s_[pos - 1] == '\n';
    }
    Token eof;
    eof.type = Tok::Eof;
    eof.loc = loc_at(s_.size());
    toks_.push_back(eof);
    return std::move(toks_);
  }

 private:
  Loc loc_at(size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    size_t line = it - line_starts_.begin();
    return {static_cast<int>(line), static_cast<int>(pos - line_starts_[line - 1] + 1)};
  }

  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1)) {
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  void emit_data(const std::string& text, size_t pos) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::Data;
    t.text = text;
    t.loc = loc_at(pos);
    toks_.push_back(std::move(t));
  }

  // After a tag's closing delimiter: '-' strips all following whitespace, trim_blocks one
  // newline (block and comment tags only), '+' keeps everything.
  size_t after_close(size_t close_end, char sign, bool trimmable) {
    size_t p = close_end;
    if (sign == '-') {
      while (p < s_.size() && is_space(s_[p])) ++p;
    } else if (sign != '+' && trimmable && opt_.trim_blocks && p < s_.size() && s_[p] == '\n') {
      ++p;
    }
    return p;
  }

  size_t lex_comment(size_t tag, size_t body) {
    size_t end = s_.find("#}", body);
    if (end == std::string::npos) syntax_error("missing end of comment tag", loc_at(tag));
    char sign = end > body && (s_[end - 1] == '-' || s_[end - 1] == '+') ? s_[end - 1] : 0;
    return after_close(end + 2, sign, true);
  }

  bool is_raw(size_t body) const {
    size_t p = body;
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < s_.size() && is_space(s_[p])) ++p;
    return s_.compare(p, 2, "%}") == 0 || s_.compare(p, 3, "-%}") == 0 || s_.compare(p, 3, "+%}") == 0;
  }

  size_t lex_raw(size_t tag, size_t body) {
    size_t p = s_.find("%}", body);
    char sign = s_[p - 1] == '-' || s_[p - 1] == '+' ? s_[p - 1] : 0;
    size_t start = after_close(p + 2, sign, true);
    // Find "{%" [-+]? ws "endraw" ws [-+]? "%}".
    for (size_t q = s_.find("{%", start); q != std::string::npos; q = s_.find("{%", q + 1)) {
      size_t r = q + 2;
      char osign = (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) ? s_[r++] : 0;
      while (r < s_.size() && is_space(s_[r])) ++r;
      if (s_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      while (r < s_.size() && is_space(s_[r])) ++r;
      char csign = (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) ? s_[r++] : 0;
      if (s_.compare(r, 2, "%}") != 0) continue;
      std::string text = s_.substr(start, q - start);
      if (osign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (osign != '+' && opt_.lstrip_blocks) {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 && std::all_of(text.begin() + l_pos, text.end(), is_space)) text.resize(l_pos);
      }
      emit_data(text, start);
      return after_close(r + 2, csign, true);
    }
    syntax_error("missing {% endraw %} for {% raw %}", loc_at(tag));
  }

  void push(Tok type, std::string text, size_t pos) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.loc = loc_at(pos);
    toks_.push_back(std::move(t));
  }

  size_t lex_tag(bool block, size_t tag, size_t p) {
    push(block ? Tok::BlockBegin : Tok::VarBegin, "", tag);
    std::vector<char> stack;  // open brackets: the closing delimiter only counts at depth 0
    const char close = block ? '%' : '}';
    // Operator chains (a + a + ...) parse into trees as deep as they are long; bounding the
    // tokens of one tag bounds the evaluator's recursion.
    const size_t first_token = toks_.size();
    while (true) {
      if (toks_.size() - first_token > kMaxTagTokens)
        syntax_error("tag has more than " + std::to_string(kMaxTagTokens) + " tokens", loc_at(tag));
      while (p < s_.size() && is_space(s_[p])) ++p;
      if (p >= s_.size())
        syntax_error(block ? "unexpected end of template, expected end of block tag '%}'"
                           : "unexpected end of template, expected end of print statement '}}'",
                     loc_at(tag));
      if (stack.empty()) {
        char sign = (s_[p] == '-' || (block && s_[p] == '+')) ? s_[p] : 0;
        size_t q = p + (sign ? 1 : 0);
        if (q + 1 < s_.size() && s_[q] == close && s_[q + 1] == '}') {
          push(block ? Tok::BlockEnd : Tok::VarEnd, "", p);
          return after_close(q + 2, sign, block);
        }
      }
      char c = s_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        push(Tok::Name, s_.substr(p, e - p), p);
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        p = lex_number(p);
      } else if (c == '\'' || c == '"') {
        size_t e = p + 1;
        while (e < s_.size() && s_[e] != c) e += (s_[e] == '\\') ? 2 : 1;
        if (e >= s_.size()) syntax_error("unterminated string literal", loc_at(p));
        Token t;
        t.type = Tok::String;
        t.loc = loc_at(p);
        t.text = decode_string(s_.substr(p + 1, e - p - 1), t.loc);
        toks_.push_back(std::move(t));
        p = e + 1;
      } else {
        static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op;
        for (const char* t : two)
          if (s_.compare(p, 2, t) == 0) op = t;
        if (op.empty()) {
          if (!std::strchr("+-/*%~[](){}<>=.:|,;", c) || c == 0)
            syntax_error(std::string("unexpected character '") + c + "'", loc_at(p));
          op = std::string(1, c);
        }
        if (op == "(" || op == "[" || op == "{") {
          if (stack.size() > 256) syntax_error("brackets nested too deeply", loc_at(p));
          stack.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (stack.empty() || stack.back() != op[0])
            syntax_error("unexpected '" + op + "'", loc_at(p));
          stack.pop_back();
        }
        push(Tok::Op, op, p);
        p += op.size();
      }
    }
  }

  size_t lex_number(size_t p) {
    size_t e = p;
    auto digits = [&](size_t& q) {
      size_t start = q;
      while (q < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[q])) ||
                               (s_[q] == '_' && q > start && q + 1 < s_.size() &&
                                std::isdigit(static_cast<unsigned char>(s_[q + 1])))))
        ++q;
      return q > start;
    };
    digits(e);
    bool is_float = false;
    if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
      ++e;
      digits(e);
      is_float = true;
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t q = e + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      if (digits(q)) {
        e = q;
        is_float = true;
      }
    }
    std::string text;
    for (size_t k = p; k < e; ++k)
      if (s_[k] != '_') text += s_[k];
    Token t;
    t.loc = loc_at(p);
    t.text = text;
    if (is_float) {
      t.type = Tok::Float;
      t.fval = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = Tok::Int;
      errno = 0;
      char* endp = nullptr;
      long long v = std::strtoll(text.c_str(), &endp, 10);
      if (errno == ERANGE) syntax_error("integer literal too large", t.loc);
      t.ival = v;
    }
    toks_.push_back(std::move(t));
    return e;
  }

  std::string s_;
  LexOptions opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> toks_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const LexOptions& opt) {
  return Lexer(normalize_newlines(source, opt.keep_trailing_newline), opt).run();
}

}  // namespace edgellm::chat::jinja
