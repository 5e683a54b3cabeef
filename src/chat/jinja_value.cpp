// Python semantics for Jinja values: str/repr, truthiness, equality, ordering.
#include "chat/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace edgellm::chat::jinja {

namespace {
std::string format_error(const std::string& message, Loc loc) {
  if (loc.line <= 0) return "chat template error: " + message;
  return "chat template error at line " + std::to_string(loc.line) + ", column " +
         std::to_string(loc.col) + ": " + message;
}
// Self-referencing namespaces (ns.x = ns) would recurse forever when printed.
constexpr int kMaxReprDepth = 200;
std::string repr_depth(const Value& v, int depth);
}  // namespace

TemplateError::TemplateError(Kind kind, const std::string& message, Loc loc)
    : Error(format_error(message, loc)), kind_(kind), message_(message), loc_(loc) {}

namespace {
thread_local ValueBudget* g_budget = nullptr;

[[noreturn]] void over_budget(const ValueBudget& b) {
  throw TemplateError(TemplateError::Kind::Runtime,
                      "template values exceed the " + std::to_string(b.limit) + "-byte memory limit", b.loc);
}
}  // namespace

ValueBudgetScope::ValueBudgetScope(ValueBudget* b) : prev_(g_budget) { g_budget = b; }
ValueBudgetScope::~ValueBudgetScope() { g_budget = prev_; }

void charge_value_bytes(size_t n) {
  if (!g_budget) return;
  check_value_bytes(n);
  g_budget->used += n;
}

void check_value_bytes(size_t n) {
  if (g_budget && (n > g_budget->limit || g_budget->used > g_budget->limit - n)) over_budget(*g_budget);
}

Value Value::undefined(std::string hint) {
  Value v;
  v.str = std::move(hint);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::None;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::Bool;
  v.b = x;
  v.i = x ? 1 : 0;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::Int;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::Float;
  v.f = x;
  return v;
}
Value Value::string(std::string s) {
  charge_value_bytes(s.size());
  Value v;
  v.kind = Kind::String;
  v.str = std::move(s);
  return v;
}
Value Value::safe_string(std::string s) {
  Value v = string(std::move(s));
  v.markup = true;
  return v;
}
std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}
Value Value::make_list(std::vector<Value> items, bool tuple) {
  size_t bytes = items.size() * sizeof(Value);
  for (const auto& x : items) bytes += x.str.size();
  charge_value_bytes(bytes);
  Value v;
  v.kind = Kind::List;
  v.list = std::make_shared<ListData>();
  v.list->items = std::move(items);
  v.list->tuple = tuple;
  return v;
}
Value Value::make_dict() {
  Value v;
  v.kind = Kind::Dict;
  v.dict = std::make_shared<DictData>();
  return v;
}
Value Value::make_namespace() {
  Value v = make_dict();
  v.kind = Kind::Namespace;
  return v;
}
Value Value::function(std::shared_ptr<Callable> c) {
  Value v;
  v.kind = Kind::Function;
  v.fn = std::move(c);
  return v;
}

bool Value::is_tuple() const { return kind == Kind::List && list->tuple; }

double Value::as_double() const {
  if (kind == Kind::Float) return f;
  return static_cast<double>(i);
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b;
    case Kind::Int: return i != 0;
    case Kind::Float: return f != 0.0;
    case Kind::String: return !str.empty();
    case Kind::List: return !list->items.empty();
    case Kind::Dict: return !dict->items.empty();
    default: return true;
  }
}

std::string Value::type_name() const {
  switch (kind) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return list->tuple ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Function: return "function";
  }
  return "object";
}

std::string float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-d.ddde+XX"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(-exp - 1, '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += e;
  }
  return neg ? "-" + out : out;
}

std::vector<uint32_t> utf8_decode(const std::string& s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = 0;
    bool ok = len > 0 && i + len <= n;
    if (ok) {
      cp = len == 1 ? c : c & (0x7F >> len);
      for (int k = 1; k < len; ++k) {
        unsigned char cc = s[i + k];
        if ((cc & 0xC0) != 0x80) { ok = false; break; }
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    if (!ok) {
      out.push_back(0xFFFD);  // invalid byte: replacement character, move on one byte
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}


std::string utf8_encode(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) append_utf8(out, cp);
  return out;
}

namespace {
// Approximates Python's str.isprintable for the characters chat data contains.
bool printable(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp >= 0x80 && cp <= 0xA0) return false;
  if (cp == 0xAD) return false;
  if ((cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
      (cp >= 0x205F && cp <= 0x206F))
    return false;
  if (cp == 0x3000 || cp == 0xFEFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  if (cp >= 0xE000 && cp <= 0xF8FF) return false;
  return true;
}
}  // namespace

std::string string_repr(const std::string& s) {
  char quote = '\'';
  if (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) quote = '"';
  std::string out(1, quote);
  for (uint32_t cp : utf8_decode(s)) {
    char buf[16];
    if (cp == '\\') out += "\\\\";
    else if (cp == static_cast<uint32_t>(quote)) { out += '\\'; out += quote; }
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (printable(cp)) append_utf8(out, cp);
    else {
      if (cp < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      else std::snprintf(buf, sizeof buf, "\\U%08x", cp);
      out += buf;
    }
  }
  out += quote;
  return out;
}

namespace {
std::string str_depth(const Value& v, int depth) {
  if (depth > kMaxReprDepth)
    throw TemplateError(TemplateError::Kind::Runtime, "value nested too deeply to print", {});
  switch (v.kind) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return v.b ? "True" : "False";
    case Kind::Int: return std::to_string(v.i);
    case Kind::Float: return float_repr(v.f);
    case Kind::String: return v.str;
    case Kind::List: {
      const auto& items = v.list->items;
      std::string out = v.list->tuple ? "(" : "[";
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += ", ";
        out += repr_depth(items[k], depth + 1);
      }
      if (v.list->tuple && items.size() == 1) out += ",";
      out += v.list->tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict:
    case Kind::Namespace: {
      std::string out = v.kind == Kind::Namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, val] : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        out += repr_depth(k, depth + 1) + ": " + repr_depth(val, depth + 1);
      }
      out += v.kind == Kind::Namespace ? "}>" : "}";
      return out;
    }
    case Kind::Function: return "<function " + v.fn->name() + ">";
  }
  return "";
}
std::string repr_depth(const Value& v, int depth) {
  if (v.kind == Kind::String) return string_repr(v.str);
  if (v.kind == Kind::Undefined) return "Undefined";
  return str_depth(v, depth);
}
}  // namespace

std::string Value::to_str() const { return str_depth(*this, 0); }
std::string Value::repr() const { return repr_depth(*this, 0); }

const Value* DictData::find(const Value& key) const {
  for (const auto& kv : items)
    if (equals(kv.first, key)) return &kv.second;
  return nullptr;
}
const Value* DictData::find(const std::string& key) const {
  for (const auto& kv : items)
    if (kv.first.kind == Kind::String && kv.first.str == key) return &kv.second;
  return nullptr;
}
void DictData::set(const Value& key, Value v) {
  charge_value_bytes(sizeof(std::pair<Value, Value>) + key.str.size() + v.str.size());
  for (auto& kv : items)
    if (equals(kv.first, key)) {
      kv.second = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

const Value* CallArgs::get(size_t index, const std::string& name) const {
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  if (index < pos.size()) return &pos[index];
  return nullptr;
}

namespace {
bool equals_depth(const Value& a, const Value& b, int depth) {
  if (depth > kMaxReprDepth) return false;
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return a.as_double() == b.as_double();
    return a.i == b.i;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return a.str == b.str;
    case Kind::List: {
      if (a.list->tuple != b.list->tuple) return false;
      const auto &x = a.list->items, &y = b.list->items;
      if (x.size() != y.size()) return false;
      for (size_t k = 0; k < x.size(); ++k)
        if (!equals_depth(x[k], y[k], depth + 1)) return false;
      return true;
    }
    case Kind::Dict: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, v] : a.dict->items) {
        const Value* other = b.dict->find(k);
        if (!other || !equals_depth(v, *other, depth + 1)) return false;
      }
      return true;
    }
    case Kind::Namespace: return a.dict == b.dict;
    case Kind::Function: return a.fn == b.fn;
    default: return false;
  }
}
}  // namespace

bool equals(const Value& a, const Value& b) { return equals_depth(a, b, 0); }

bool less_than(const Value& a, const Value& b, Loc loc) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind == Kind::Float || b.kind == Kind::Float) return a.as_double() < b.as_double();
    return a.i < b.i;
  }
  if (a.kind == Kind::String && b.kind == Kind::String) return a.str < b.str;  // UTF-8 order = code point order
  if (a.kind == Kind::List && b.kind == Kind::List && a.list->tuple == b.list->tuple) {
    const auto &x = a.list->items, &y = b.list->items;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equals(x[k], y[k])) continue;
      return less_than(x[k], y[k], loc);
    }
    return x.size() < y.size();
  }
  throw TemplateError(TemplateError::Kind::Runtime,
                      "'<' not supported between instances of '" + a.type_name() + "' and '" +
                          b.type_name() + "'",
                      loc);
}

}  // namespace edgellm::chat::jinja
