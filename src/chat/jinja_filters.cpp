// Filters ({{ x | name(args) }}) and tests ({% if x is name %}) with jinja2's semantics.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "chat/jinja.h"
#include "chat/jinja_interp.h"
#include "chat/jinja_strings.h"

namespace edgellm::chat::jinja {

namespace {

const std::set<std::string> kFilters = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "first", "float", "format", "indent", "int", "items", "join", "last", "length",
    "list", "lower", "map", "max", "min", "pprint", "reject", "rejectattr", "replace", "reverse",
    "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
    "unique", "upper", "wordcount"};
const std::set<std::string> kTests = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
    "string", "mapping", "iterable", "sequence", "callable", "sameas", "escaped", "even", "odd",
    "divisibleby", "lower", "upper", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<",
    "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "filter", "test"};

bool arg_bool(const Value* v, bool dflt) { return v ? v->truthy() : dflt; }

int64_t length_of(Interpreter& in, const Value& v, Loc loc) {
  switch (v.kind) {
    case Kind::String: return static_cast<int64_t>(pystr::length(v.str));
    case Kind::List: return static_cast<int64_t>(v.list->items.size());
    case Kind::Dict: return static_cast<int64_t>(v.dict->items.size());
    case Kind::Undefined: return 0;
    default: in.fail("object of type '" + v.type_name() + "' has no len()", loc);
  }
}

// jinja2's make_attrgetter: "a.b.0" walks attributes/items, numeric parts index.
Value attr_path(Interpreter& in, const Value& item, const Value& attribute, Loc loc) {
  if (!attribute.is_string()) return in.getitem(item, attribute, loc);
  Value cur = item;
  size_t start = 0;
  const std::string& path = attribute.str;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? in.getitem(cur, Value::integer(std::stoll(part)), loc)
                  : in.getitem(cur, Value::string(part), loc);
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Sort key helper: case-insensitive compares lowercase strings.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(pystr::lower(v.str));
  return v;
}

Value py_round(Interpreter& in, const Value& v, int64_t precision, const std::string& method, Loc loc) {
  if (!v.is_numeric()) in.fail("round: a number is required, not " + v.type_name(), loc);
  double x = v.as_double();
  if (method == "common") {
    if (precision >= 0 && precision < 300) {
      char buf[400];  // printf rounds the exact binary value half-to-even, like Python's round()
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), x);
      return Value::number(std::strtod(buf, nullptr));
    }
    double p = std::pow(10.0, static_cast<double>(-precision));
    return Value::number(std::nearbyint(x / p) * p);
  }
  double p = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value::number(std::ceil(x * p) / p);
  if (method == "floor") return Value::number(std::floor(x * p) / p);
  in.fail("method must be common, ceil or floor", loc);
}

Value tojson(Interpreter& in, const Value& v, CallArgs& a, Loc loc) {
  DumpOptions o;
  const Value* indent = a.get(in.options().hf_tojson ? 1 : 0, "indent");
  if (indent && !indent->is_none()) {
    if (indent->is_string()) {
      o.indent_is_string = true;
      o.indent_str = indent->str;
    } else if (indent->is_numeric() && indent->kind != Kind::Float) {
      o.indent = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(indent->i, 64)));
    } else {
      in.fail("tojson: indent must be an integer or a string", loc);
    }
    o.item_sep = ",";
  }
  if (in.options().hf_tojson) {  // transformers: json.dumps(x, ensure_ascii=False, ...)
    o.ensure_ascii = arg_bool(a.get(0, "ensure_ascii"), false);
    o.sort_keys = arg_bool(a.get(3, "sort_keys"), false);
    const Value* sep = a.get(2, "separators");
    if (sep && sep->is_list() && sep->list->items.size() == 2 && sep->list->items[0].is_string() &&
        sep->list->items[1].is_string()) {
      o.item_sep = sep->list->items[0].str;
      o.key_sep = sep->list->items[1].str;
    }
  } else {  // jinja2's own: sorted keys, ASCII-only, HTML-safe
    o.ensure_ascii = true;
    o.sort_keys = true;
    o.html_safe = true;
  }
  std::string out = json_dumps(v, o, loc);
  in.check_size(out.size(), loc);
  return Value::string(std::move(out));
}

Value indent_filter(Interpreter& in, const Value& v, CallArgs& a, Loc loc) {
  const Value* w = a.get(0, "width");
  std::string ind = w && w->is_string() ? w->str : std::string(w ? static_cast<size_t>(std::clamp<int64_t>(w->i, 0, 1024)) : 4, ' ');
  bool first = arg_bool(a.get(1, "first"), false), blank = arg_bool(a.get(2, "blank"), false);
  std::string s = v.to_str() + "\n";
  std::vector<std::string> lines;
  for (size_t start = 0; start < s.size();) {
    size_t p = s.find('\n', start);
    lines.push_back(s.substr(start, p - start));
    start = p + 1;
  }
  std::string rv;
  if (blank) {
    for (size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + ind : "") + lines[k];
  } else {
    rv = lines[0];
    for (size_t k = 1; k < lines.size(); ++k) rv += "\n" + (lines[k].empty() ? "" : ind + lines[k]);
  }
  if (first) rv = ind + rv;
  in.check_size(rv.size(), loc);
  return Value::string(std::move(rv));
}

// select/reject/selectattr/rejectattr share this: keep items where the test (or truthiness)
// on the item (or its attribute) equals `keep`.
Value select_items(Interpreter& in, const Value& v, CallArgs& a, bool by_attr, bool keep, Loc loc) {
  size_t next = 0;
  Value attribute;
  if (by_attr) {
    if (a.pos.empty()) in.fail("missing attribute for selectattr/rejectattr", loc);
    attribute = a.pos[next++];
  }
  bool has_test = next < a.pos.size();
  std::string test = has_test ? a.pos[next].to_str() : "";
  if (has_test && !has_filter_or_test(test, false)) in.fail("no test named '" + test + "'", loc);
  CallArgs targs;
  for (size_t k = next + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
  std::vector<Value> out;
  if (!v.truthy()) return Value::make_list();  // jinja2: `if value:` before iterating
  for (const auto& item : in.iterate(v, loc)) {
    Value subject = by_attr ? attr_path(in, item, attribute, loc) : item;
    bool r = has_test ? in.apply_test(test, subject, targs, loc) : subject.truthy();
    if (r == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value sorted(Interpreter& in, std::vector<Value> items, bool reverse, bool case_sensitive,
             const Value* attribute, Loc loc) {
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& it : items) {
    Value k = attribute && !attribute->is_none() ? attr_path(in, it, *attribute, loc) : it;
    keyed.emplace_back(sort_key(k, case_sensitive), std::move(it));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first, loc) : less_than(x.first, y.first, loc);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::make_list(std::move(out));
}

}  // namespace

bool has_filter_or_test(const std::string& name, bool filter) {
  return filter ? kFilters.count(name) > 0 : kTests.count(name) > 0;
}

Value Interpreter::apply_filter(const std::string& f, const Value& v, CallArgs& a, Loc loc) {
  tick(loc);
  if (f == "default" || f == "d") {
    const Value* dflt = a.get(0, "default_value");
    bool boolean = arg_bool(a.get(1, "boolean"), false);
    if (v.is_undefined() || (boolean && !v.truthy())) return dflt ? *dflt : Value::string("");
    return v;
  }
  if (f == "safe") return v.is_string() && v.markup ? v : Value::safe_string(v.to_str());
  if (f == "length" || f == "count") return Value::integer(length_of(*this, v, loc));
  if (f == "string") return v.is_string() ? v : Value::string(v.to_str());
  if (f == "pprint") return Value::string(v.repr());
  if (f == "tojson") return tojson(*this, v, a, loc);
  if (f == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (!v.is_dict()) fail("Can only get item pairs from a mapping.", loc);
    std::vector<Value> out;
    for (const auto& [k, val] : v.dict->items) out.push_back(Value::make_list({k, val}, true));
    return Value::make_list(std::move(out));
  }
  if (f == "list") return Value::make_list(iterate(v, loc));
  if (f == "first" || f == "last") {
    std::vector<Value> items = iterate(v, loc);
    if (items.empty()) return Value::undefined("No " + f + " item, sequence was empty.");
    return f == "first" ? items.front() : items.back();
  }
  if (f == "reverse") {
    if (v.is_string()) {
      std::vector<uint32_t> cps = utf8_decode(v.str);
      std::reverse(cps.begin(), cps.end());
      return Value::string(utf8_encode(cps));
    }
    std::vector<Value> items = iterate(v, loc);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (f == "join") {
    const Value* sep = a.get(0, "d");
    const Value* attribute = a.get(1, "attribute");
    std::string out;
    size_t k = 0;
    for (const auto& item : iterate(v, loc)) {
      if (k++) out += sep ? sep->to_str() : "";
      out += (attribute && !attribute->is_none() ? attr_path(*this, item, *attribute, loc) : item).to_str();
      check_size(out.size(), loc);
    }
    return Value::string(std::move(out));
  }
  if (f == "map") {
    const Value* attribute = nullptr;
    for (const auto& [k, val] : a.kw)
      if (k == "attribute") attribute = &val;
    std::vector<Value> out;
    if (!v.truthy()) return Value::make_list();  // jinja2: `if value:` before iterating
    if (attribute) {
      const Value* dflt = nullptr;
      for (const auto& [k, val] : a.kw)
        if (k == "default") dflt = &val;
      for (const auto& item : iterate(v, loc)) {
        Value r = attr_path(*this, item, *attribute, loc);
        out.push_back(r.is_undefined() && dflt ? *dflt : r);
      }
      return Value::make_list(std::move(out));
    }
    if (a.pos.empty()) fail("map requires a filter name or attribute=", loc);
    std::string name = a.pos[0].to_str();
    if (!has_filter_or_test(name, true)) fail("no filter named '" + name + "'", loc);
    CallArgs fargs;
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
    fargs.kw = a.kw;
    for (const auto& item : iterate(v, loc)) out.push_back(apply_filter(name, item, fargs, loc));
    return Value::make_list(std::move(out));
  }
  if (f == "select") return select_items(*this, v, a, false, true, loc);
  if (f == "reject") return select_items(*this, v, a, false, false, loc);
  if (f == "selectattr") return select_items(*this, v, a, true, true, loc);
  if (f == "rejectattr") return select_items(*this, v, a, true, false, loc);
  if (f == "sort")
    return sorted(*this, iterate(v, loc), arg_bool(a.get(0, "reverse"), false),
                  arg_bool(a.get(1, "case_sensitive"), false), a.get(2, "attribute"), loc);
  if (f == "dictsort") {
    if (!v.is_dict()) fail("dictsort: a mapping is required", loc);
    bool cs = arg_bool(a.get(0, "case_sensitive"), false);
    const Value* by = a.get(1, "by");
    bool by_value = by && by->to_str() == "value";
    std::vector<Value> pairs;
    for (const auto& [k, val] : v.dict->items) pairs.push_back(Value::make_list({k, val}, true));
    Value idx = Value::integer(by_value ? 1 : 0);
    return sorted(*this, std::move(pairs), arg_bool(a.get(2, "reverse"), false), cs, &idx, loc);
  }
  if (f == "unique") {
    bool cs = arg_bool(a.get(0, "case_sensitive"), false);
    const Value* attribute = a.get(1, "attribute");
    std::vector<Value> out, seen;
    for (const auto& item : iterate(v, loc)) {
      Value key = sort_key(attribute && !attribute->is_none() ? attr_path(*this, item, *attribute, loc) : item, cs);
      if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
      seen.push_back(key);
      out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (f == "min" || f == "max") {
    std::vector<Value> items = iterate(v, loc);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    Value s = sorted(*this, items, f == "max", arg_bool(a.get(0, "case_sensitive"), false), a.get(1, "attribute"), loc);
    return s.list->items.front();
  }
  if (f == "sum") {
    const Value* attribute = a.get(0, "attribute");
    const Value* start = a.get(1, "start");
    Value total = start ? *start : Value::integer(0);
    for (const auto& item : iterate(v, loc))
      total = binary_op(*this, "+", total,
                        attribute && !attribute->is_none() ? attr_path(*this, item, *attribute, loc) : item, loc);
    return total;
  }
  if (f == "attr") {
    const Value* name = a.get(0, "name");
    return getattr(v, name ? name->to_str() : "", loc);
  }
  if (f == "batch") {
    const Value* n = a.get(0, "linecount");
    int64_t size = n && n->is_numeric() ? n->i : 0;
    if (size <= 0) fail("batch size must be positive", loc);
    const Value* fill = a.get(1, "fill_with");
    std::vector<Value> out, cur;
    for (const auto& item : iterate(v, loc)) {
      cur.push_back(item);
      if (static_cast<int64_t>(cur.size()) == size) out.push_back(Value::make_list(std::move(cur))), cur.clear();
    }
    if (!cur.empty()) {
      if (fill && !fill->is_none())
        while (static_cast<int64_t>(cur.size()) < size) cur.push_back(*fill);
      out.push_back(Value::make_list(std::move(cur)));
    }
    return Value::make_list(std::move(out));
  }
  // String filters: jinja2 converts the input with str() (undefined -> "").
  std::string s = v.to_str();
  // Markup stays Markup through the string filters (markupsafe's str methods do).
  auto keep = [&](std::string r) {
    Value out = Value::string(std::move(r));
    out.markup = v.is_string() && v.markup;
    return out;
  };
  if (f == "trim") {
    const Value* chars = a.get(0, "chars");
    return keep(pystr::strip(s, chars && !chars->is_none() ? &chars->str : nullptr, true, true));
  }
  if (f == "upper") return keep(pystr::upper(s));
  if (f == "lower") return keep(pystr::lower(s));
  if (f == "capitalize") return keep(pystr::capitalize(s));
  if (f == "title") {
    // jinja2 splits on runs of "-", whitespace and ({[< and capitalizes each piece.
    std::string out;
    std::vector<uint32_t> cps = utf8_decode(s);
    bool start = true;
    for (uint32_t c : cps) {
      bool sep = pystr::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
      std::string ch = utf8_encode({c});
      out += sep ? ch : (start ? pystr::upper(ch) : pystr::lower(ch));
      start = sep;
    }
    return keep(out);
  }
  if (f == "replace") {
    const Value* c = a.get(2, "count");
    std::string r = pystr::replace(s, a.get(0, "old") ? a.get(0, "old")->to_str() : "",
                                   a.get(1, "new") ? a.get(1, "new")->to_str() : "",
                                   c && c->is_numeric() ? static_cast<long>(c->i) : -1);
    check_size(r.size(), loc);
    return keep(std::move(r));
  }
  if (f == "indent") return keep(indent_filter(*this, v, a, loc).str);
  if (f == "escape" || f == "e") return v.is_string() && v.markup ? v : Value::safe_string(html_escape(s));
  if (f == "center") {
    const Value* w = a.get(0, "width");
    int64_t width = w && w->is_numeric() ? std::min<int64_t>(w->i, 1 << 20) : 80;
    int64_t len = static_cast<int64_t>(pystr::length(s));
    if (width <= len) return Value::string(s);
    int64_t total = width - len, left = total / 2 + (total & width & 1);
    return Value::string(std::string(left, ' ') + s + std::string(total - left, ' '));
  }
  if (f == "wordcount") return Value::integer(static_cast<int64_t>(pystr::split(s, nullptr, -1, false).size()));
  if (f == "format") return binary_op(*this, "%", Value::string(s), Value::make_list(a.pos, true), loc);
  if (f == "abs") {
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    if (!v.is_numeric()) fail("bad operand type for abs(): '" + v.type_name() + "'", loc);
    if (v.i == INT64_MIN) fail("integer overflow", loc);
    return Value::integer(v.i < 0 ? -v.i : v.i);
  }
  if (f == "round") {
    const Value* p = a.get(0, "precision");
    const Value* m = a.get(1, "method");
    return py_round(*this, v, p && p->is_numeric() ? p->i : 0, m ? m->to_str() : "common", loc);
  }
  if (f == "int" || f == "float") {
    const Value* dflt = a.get(0, "default");
    Value fallback = dflt ? *dflt : (f == "int" ? Value::integer(0) : Value::number(0.0));
    // float -> int as Python's int(): truncation; NaN is a ValueError, which jinja2's |int
    // turns into the default; infinity is an OverflowError; beyond int64 Python makes a big
    // integer, which this engine does not have (an error, never an undefined conversion).
    auto to_int = [&](double d) {
      if (std::isnan(d)) return fallback;
      if (std::isinf(d)) fail("cannot convert float infinity to integer", loc);
      if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0)) fail("integer overflow", loc);
      return Value::integer(static_cast<int64_t>(d));
    };
    if (v.is_numeric())
      return f == "int" ? (v.kind == Kind::Float ? to_int(v.f) : Value::integer(v.i)) : Value::number(v.as_double());
    if (!v.is_string()) return fallback;
    std::string t = pystr::strip(v.str, nullptr, true, true);
    char* end = nullptr;
    errno = 0;
    if (f == "int") {
      long long i = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && *end == 0 && errno == 0) return Value::integer(i);
    }
    double d = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != 0) return fallback;  // "nan" parses (Python's float("nan"))
    if (f == "int") return to_int(d);
    return Value::number(d);
  }
  fail("no filter named '" + f + "'", loc);
}

bool Interpreter::apply_test(const std::string& t, const Value& v, CallArgs& a, Loc loc) {
  const Value* arg = a.get(0, "value");
  auto need_arg = [&]() -> const Value& {
    if (!arg) fail("test '" + t + "' needs an argument", loc);
    return *arg;
  };
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.is_none();
  if (t == "boolean") return v.kind == Kind::Bool;
  if (t == "true") return v.kind == Kind::Bool && v.b;
  if (t == "false") return v.kind == Kind::Bool && !v.b;
  if (t == "integer") return v.kind == Kind::Int;
  if (t == "float") return v.kind == Kind::Float;
  if (t == "number") return v.is_numeric();
  if (t == "string") return v.is_string();
  if (t == "mapping") return v.is_dict();
  if (t == "iterable" || t == "sequence")
    return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (t == "callable") return v.kind == Kind::Function;
  if (t == "escaped") return false;
  if (t == "lower") return v.is_string() && pystr::is_lower(v.str);
  if (t == "upper") return v.is_string() && pystr::is_upper(v.str);
  if (t == "even" || t == "odd" || t == "divisibleby") {
    require_defined(v, loc);
    if (!v.is_numeric()) fail("test '" + t + "' needs a number, not " + v.type_name(), loc);
    if (t == "divisibleby") {
      const Value& d = need_arg();
      if (!d.is_numeric() || d.as_double() == 0) fail("divisibleby needs a non-zero number", loc);
      if (v.kind == Kind::Float || d.kind == Kind::Float) return std::fmod(v.as_double(), d.as_double()) == 0;
      return v.i % d.i == 0;
    }
    double m = v.kind == Kind::Float ? std::fmod(v.f, 2.0) : static_cast<double>(v.i % 2);
    return t == "even" ? m == 0 : m != 0;
  }
  if (t == "sameas") {
    const Value& o = need_arg();
    if (v.kind != o.kind) return false;
    switch (v.kind) {
      case Kind::List: return v.list == o.list;
      case Kind::Dict:
      case Kind::Namespace: return v.dict == o.dict;
      case Kind::Function: return v.fn == o.fn;
      default: return equals(v, o);
    }
  }
  if (t == "eq" || t == "equalto" || t == "==") return equals(v, need_arg());
  if (t == "ne" || t == "!=") return !equals(v, need_arg());
  if (t == "lt" || t == "lessthan" || t == "<") return less_than(v, need_arg(), loc);
  if (t == "gt" || t == "greaterthan" || t == ">") return less_than(need_arg(), v, loc);
  if (t == "le" || t == "<=") return !less_than(need_arg(), v, loc);
  if (t == "ge" || t == ">=") return !less_than(v, need_arg(), loc);
  if (t == "in") return contains(*this, need_arg(), v, loc);
  if (t == "filter") return v.is_string() && has_filter_or_test(v.str, true);
  if (t == "test") return v.is_string() && has_filter_or_test(v.str, false);
  fail("no test named '" + t + "'", loc);
}

}  // namespace edgellm::chat::jinja
