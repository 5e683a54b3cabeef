// JSON <-> Jinja values. json_dumps reproduces Python's json.dumps byte for byte (separators,
// indent, ensure_ascii, float repr), which is what transformers' `tojson` filter calls.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chat/jinja_value.h"

namespace edgellm::chat::jinja {

namespace {
Value from_json_any(const chat::Value& j, int depth) {
  if (depth > 512)
    throw TemplateError(TemplateError::Kind::Runtime, "JSON input nested too deeply", {});
  using T = chat::Value::Type;
  switch (j.type) {
    case T::Null: return Value::none();
    case T::Bool: return Value::boolean(j.b);
    case T::Int: return Value::integer(j.i);
    case T::Float: return Value::number(j.f);
    case T::String: return Value::string(j.s);
    case T::Array: {
      std::vector<Value> items;
      items.reserve(j.items.size());
      for (const auto& e : j.items) items.push_back(from_json_any(e, depth + 1));
      return Value::make_list(std::move(items));
    }
    case T::Object: {
      Value d = Value::make_dict();
      d.dict->items.reserve(j.fields.size());
      // Keys are taken as unique (they come from parsed JSON objects): no quadratic check.
      for (const auto& [k, v] : j.fields) d.dict->items.emplace_back(Value::string(k), from_json_any(v, depth + 1));
      return d;
    }
  }
  return Value::none();
}

void dump_string(std::string& out, const std::string& s, const DumpOptions& opt) {
  out += '"';
  char buf[16];
  auto hex = [&](uint32_t u) {
    std::snprintf(buf, sizeof buf, "\\u%04x", u);
    out += buf;
  };
  for (uint32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (opt.html_safe && (cp == '<' || cp == '>' || cp == '&' || cp == '\'')) {
      hex(cp);
    } else if (cp < 0x20) {
      hex(cp);
    } else if (opt.ensure_ascii && cp >= 0x7F) {
      if (cp == 0x7F) { out += static_cast<char>(cp); continue; }
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        hex(0xD800 | (v >> 10));
        hex(0xDC00 | (v & 0x3FF));
      } else {
        hex(cp);
      }
    } else {
      append_utf8(out, cp);
    }
  }
  out += '"';
}

std::string json_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  return float_repr(v);
}

// Python's json converts these key types to strings; anything else is a TypeError.
std::string key_string(const Value& k, Loc loc) {
  switch (k.kind) {
    case Kind::String: return k.str;
    case Kind::Int: return std::to_string(k.i);
    case Kind::Float: return json_float(k.f);
    case Kind::Bool: return k.b ? "true" : "false";
    case Kind::None: return "null";
    default:
      throw TemplateError(TemplateError::Kind::Runtime,
                          "tojson: keys must be str, int, float, bool or None, not " +
                              k.type_name(),
                          loc);
  }
}

void newline_indent(std::string& out, const DumpOptions& opt, int level) {
  out += '\n';
  if (opt.indent_is_string) {
    for (int k = 0; k < level; ++k) out += opt.indent_str;
  } else {
    out.append(static_cast<size_t>(opt.indent) * level, ' ');
  }
}

void dump(std::string& out, const Value& v, const DumpOptions& opt, int level, Loc loc) {
  if (level > 512)
    throw TemplateError(TemplateError::Kind::Runtime, "tojson: value nested too deeply", loc);
  const bool pretty = opt.indent >= 0 || opt.indent_is_string;
  switch (v.kind) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.b ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.i); return;
    case Kind::Float: out += json_float(v.f); return;
    case Kind::String: dump_string(out, v.str, opt); return;
    case Kind::List: {
      const auto& items = v.list->items;
      if (items.empty()) { out += "[]"; return; }
      out += '[';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += opt.item_sep;
        if (pretty) newline_indent(out, opt, level + 1);
        dump(out, items[k], opt, level + 1, loc);
      }
      if (pretty) newline_indent(out, opt, level);
      out += ']';
      return;
    }
    case Kind::Dict: {
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [k, val] : v.dict->items) entries.emplace_back(key_string(k, loc), &val);
      if (entries.empty()) { out += "{}"; return; }
      if (opt.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t k = 0; k < entries.size(); ++k) {
        if (k) out += opt.item_sep;
        if (pretty) newline_indent(out, opt, level + 1);
        dump_string(out, entries[k].first, opt);
        out += opt.key_sep;
        dump(out, *entries[k].second, opt, level + 1, loc);
      }
      if (pretty) newline_indent(out, opt, level);
      out += '}';
      return;
    }
    default:
      throw TemplateError(TemplateError::Kind::Runtime,
                          "Object of type " + v.type_name() + " is not JSON serializable", loc);
  }
}
}  // namespace

Value from_json(const chat::Value& j) { return from_json_any(j, 0); }

std::string json_dumps(const Value& v, const DumpOptions& opt, Loc loc) {
  std::string out;
  dump(out, v, opt, 0, loc);
  return out;
}

}  // namespace edgellm::chat::jinja
