// Globals (range, namespace, dict, raise_exception, strftime_now) and the str / dict / list
// methods a sandboxed template may call. Mutating methods (list.append, dict.update, ...) are
// blocked as in jinja2's ImmutableSandboxedEnvironment.
#include <charconv>
#include <ctime>
#include <functional>
#include <set>

#include "chat/jinja_interp.h"
#include "chat/jinja_strings.h"

namespace edgellm::chat::jinja {

namespace {

using Impl = std::function<Value(Interpreter&, CallArgs&, Loc)>;

class Builtin : public Callable {
 public:
  Builtin(std::string name, Impl impl) : name_(std::move(name)), impl_(std::move(impl)) {}
  std::string name() const override { return name_; }
  Value call(Interpreter& in, CallArgs& args, Loc loc) override { return impl_(in, args, loc); }

 private:
  std::string name_;
  Impl impl_;
};

Value make_fn(std::string name, Impl impl) {
  return Value::function(std::make_shared<Builtin>(std::move(name), std::move(impl)));
}

const std::string& str_arg(Interpreter& in, const Value* v, const char* what, Loc loc) {
  if (!v || !v->is_string()) in.fail(std::string(what) + " must be a string", loc);
  return v->str;
}
int64_t int_arg(Interpreter& in, const Value* v, const char* what, Loc loc) {
  if (!v || !v->is_numeric() || v->kind == Kind::Float) in.fail(std::string(what) + " must be an integer", loc);
  return v->i;
}

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  for (const auto& p : parts) items.push_back(Value::string(p));
  return Value::make_list(std::move(items));
}

// str.format with {} / {0} / {name} fields (format specs beyond the field name are ignored).
Value str_format(Interpreter& in, const std::string& fmt, CallArgs& args, Loc loc) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c != '{') { out += c; continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) in.fail("Single '{' encountered in format string", loc);
    std::string field = fmt.substr(i + 1, close - i - 1);
    size_t colon = field.find(':');
    if (colon != std::string::npos) field = field.substr(0, colon);
    const Value* v = nullptr;
    if (field.empty()) v = auto_idx < args.pos.size() ? &args.pos[auto_idx++] : nullptr;
    else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      // from_chars: a 30-digit index must be "no such argument", not an out_of_range throw.
      size_t idx = 0;
      const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), idx);
      v = ec == std::errc() && end == field.data() + field.size() && idx < args.pos.size() ? &args.pos[idx] : nullptr;
    } else {
      for (const auto& [k, val] : args.kw)
        if (k == field) v = &val;
    }
    if (!v) in.fail("format field '{" + field + "}' has no matching argument", loc);
    out += v->to_str();
    in.check_size(out.size(), loc);
    i = close;
  }
  return Value::string(std::move(out));
}

Value call_str_method(Interpreter& in, const std::string& s, const std::string& m, CallArgs& a, Loc loc) {
  auto opt_str = [&](size_t idx, const char* name) -> const std::string* {
    const Value* v = a.get(idx, name);
    if (!v || v->is_none()) return nullptr;
    return &str_arg(in, v, name, loc);
  };
  if (m == "upper") return Value::string(pystr::upper(s));
  if (m == "lower") return Value::string(pystr::lower(s));
  if (m == "title") return Value::string(pystr::title(s));
  if (m == "capitalize") return Value::string(pystr::capitalize(s));
  if (m == "strip" || m == "lstrip" || m == "rstrip")
    return Value::string(pystr::strip(s, opt_str(0, "chars"), m != "rstrip", m != "lstrip"));
  if (m == "split" || m == "rsplit") {
    const std::string* sep = opt_str(0, "sep");
    if (sep && sep->empty()) in.fail("empty separator", loc);
    const Value* mx = a.get(1, "maxsplit");
    long maxsplit = mx ? static_cast<long>(int_arg(in, mx, "maxsplit", loc)) : -1;
    return string_list(pystr::split(s, sep, maxsplit, m == "rsplit"));
  }
  if (m == "splitlines") {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < s.size()) {
      size_t p = s.find('\n', start);
      if (p == std::string::npos) p = s.size();
      std::string line = s.substr(start, p - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
      start = p + 1;
    }
    return string_list(lines);
  }
  if (m == "startswith" || m == "endswith") {
    const Value* p = a.get(0, "prefix");
    if (!p) in.fail(m + "() takes at least 1 argument", loc);
    std::vector<Value> cands = p->is_tuple() ? p->list->items : std::vector<Value>{*p};
    for (const auto& c : cands) {
      const std::string& t = str_arg(in, &c, m.c_str(), loc);
      bool hit = m == "startswith" ? s.compare(0, t.size(), t) == 0
                                   : (s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0);
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (m == "replace") {
    const Value* c = a.get(2, "count");
    std::string r = pystr::replace(s, str_arg(in, a.get(0, "old"), "old", loc),
                                   str_arg(in, a.get(1, "new"), "new", loc),
                                   c ? static_cast<long>(int_arg(in, c, "count", loc)) : -1);
    in.check_size(r.size(), loc);
    return Value::string(std::move(r));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex") {
    const std::string& sub = str_arg(in, a.get(0, "sub"), "sub", loc);
    size_t p = (m == "find" || m == "index") ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) {
      if (m == "index" || m == "rindex") in.fail("substring not found", loc);
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(pystr::length(s.substr(0, p))));
  }
  if (m == "count") {
    const std::string& sub = str_arg(in, a.get(0, "sub"), "sub", loc);
    if (sub.empty()) return Value::integer(static_cast<int64_t>(pystr::length(s) + 1));
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value::integer(n);
  }
  if (m == "join") {
    const Value* it = a.get(0, "iterable");
    if (!it) in.fail("join() takes exactly one argument", loc);
    std::string out;
    size_t k = 0;
    for (const auto& v : in.iterate(*it, loc)) {
      if (!v.is_string())
        in.fail("sequence item " + std::to_string(k) + ": expected str instance, " + v.type_name() + " found", loc);
      if (k++) out += s;
      out += v.str;
      in.check_size(out.size(), loc);
    }
    return Value::string(std::move(out));
  }
  if (m == "format") return str_format(in, s, a, loc);
  if (m == "removeprefix" || m == "removesuffix") {
    const std::string& t = str_arg(in, a.get(0, "prefix"), "argument", loc);
    if (m == "removeprefix" && s.compare(0, t.size(), t) == 0) return Value::string(s.substr(t.size()));
    if (m == "removesuffix" && !t.empty() && s.size() >= t.size() &&
        s.compare(s.size() - t.size(), t.size(), t) == 0)
      return Value::string(s.substr(0, s.size() - t.size()));
    return Value::string(s);
  }
  if (m == "isdigit" || m == "isalpha" || m == "isalnum" || m == "isspace") {
    if (s.empty()) return Value::boolean(false);
    for (uint32_t c : utf8_decode(s)) {
      bool ok = m == "isdigit" ? (c >= '0' && c <= '9')
                : m == "isalpha" ? (c < 128 ? std::isalpha(static_cast<int>(c)) != 0 : true)
                : m == "isalnum" ? (c < 128 ? std::isalnum(static_cast<int>(c)) != 0 : true)
                                 : pystr::is_space(c);
      if (!ok) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  if (m == "islower") return Value::boolean(pystr::is_lower(s));
  if (m == "isupper") return Value::boolean(pystr::is_upper(s));
  in.fail("str has no method '" + m + "'", loc);
}

Value call_dict_method(Interpreter& in, const Value& d, const std::string& m, CallArgs& a, Loc loc) {
  if (m == "items") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.dict->items) out.push_back(Value::make_list({k, v}, true));
    return Value::make_list(std::move(out));
  }
  if (m == "keys" || m == "values") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.dict->items) out.push_back(m == "keys" ? k : v);
    return Value::make_list(std::move(out));
  }
  if (m == "get") {
    const Value* key = a.get(0, "key");
    if (!key) in.fail("get expected at least 1 argument, got 0", loc);
    const Value* v = d.dict->find(*key);
    if (v) return *v;
    const Value* dflt = a.get(1, "default");
    return dflt ? *dflt : Value::none();
  }
  if (m == "copy") {
    Value c = Value::make_dict();
    c.dict->items = d.dict->items;
    return c;
  }
  in.fail("dict has no method '" + m + "'", loc);
}

Value call_list_method(Interpreter& in, const Value& l, const std::string& m, CallArgs& a, Loc loc) {
  const Value* x = a.get(0, "value");
  if (m == "copy") return Value::make_list(l.list->items, l.list->tuple);
  if (!x) in.fail(m + "() takes exactly one argument", loc);
  int64_t n = 0;
  for (size_t k = 0; k < l.list->items.size(); ++k) {
    if (!equals(l.list->items[k], *x)) continue;
    if (m == "index") return Value::integer(static_cast<int64_t>(k));
    ++n;
  }
  if (m == "index") in.fail(x->repr() + " is not in list", loc);
  return Value::integer(n);
}

class BoundMethod : public Callable {
 public:
  BoundMethod(Value self, std::string name) : self_(std::move(self)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Value call(Interpreter& in, CallArgs& args, Loc loc) override {
    in.tick(loc);
    if (self_.is_string()) return call_str_method(in, self_.str, name_, args, loc);
    if (self_.is_dict()) return call_dict_method(in, self_, name_, args, loc);
    return call_list_method(in, self_, name_, args, loc);
  }

 private:
  Value self_;
  std::string name_;
};

const std::set<std::string> kStrMethods = {
    "upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "split", "rsplit",
    "splitlines", "startswith", "endswith", "replace", "find", "rfind", "index", "rindex",
    "count", "join", "format", "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum",
    "isspace", "islower", "isupper"};
const std::set<std::string> kDictMethods = {"items", "keys", "values", "get", "copy"};
const std::set<std::string> kDictUnsafe = {"pop", "popitem", "clear", "update", "setdefault"};
const std::set<std::string> kListMethods = {"index", "count", "copy"};
const std::set<std::string> kListUnsafe = {"append", "extend", "insert", "pop", "remove",
                                           "reverse", "sort", "clear"};

Value unsafe(const Value& obj, const std::string& name) {
  Value u = Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() +
                             "' object is unsafe.");
  u.unsafe = true;
  return u;
}

Value make_range(Interpreter& in, CallArgs& a, Loc loc) {
  int64_t start = 0, stop = 0, step = 1;
  if (a.pos.size() == 1) {
    stop = int_arg(in, &a.pos[0], "range() argument", loc);
  } else if (a.pos.size() == 2 || a.pos.size() == 3) {
    start = int_arg(in, &a.pos[0], "range() argument", loc);
    stop = int_arg(in, &a.pos[1], "range() argument", loc);
    if (a.pos.size() == 3) step = int_arg(in, &a.pos[2], "range() argument", loc);
  } else {
    in.fail("range expected 1 to 3 arguments", loc);
  }
  if (step == 0) in.fail("range() arg 3 must not be zero", loc);
  std::vector<Value> out;
  for (int64_t v = start; step > 0 ? v < stop : v > stop; v += step) {
    if (out.size() >= 100000)
      in.fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).", loc);
    out.push_back(Value::integer(v));
  }
  return Value::make_list(std::move(out));
}

}  // namespace

Value lookup_method(const Value& obj, const std::string& name) {
  if (obj.is_string() && kStrMethods.count(name))
    return Value::function(std::make_shared<BoundMethod>(obj, name));
  if (obj.is_dict()) {
    if (kDictMethods.count(name)) return Value::function(std::make_shared<BoundMethod>(obj, name));
    if (kDictUnsafe.count(name)) return unsafe(obj, name);
  }
  if (obj.is_list()) {
    if (kListMethods.count(name)) return Value::function(std::make_shared<BoundMethod>(obj, name));
    if (kListUnsafe.count(name) && !obj.list->tuple) return unsafe(obj, name);
  }
  return Value::undefined();
}

Value lookup_global(const std::string& name) {
  if (name == "range") return make_fn(name, make_range);
  if (name == "namespace")
    return make_fn(name, [](Interpreter& in, CallArgs& a, Loc loc) {
      Value ns = Value::make_namespace();
      in.track_namespace(ns);
      for (const auto& p : a.pos) {
        if (!p.is_dict()) in.fail("namespace() positional argument must be a mapping", loc);
        for (const auto& kv : p.dict->items) ns.dict->set(kv.first, kv.second);
      }
      for (const auto& [k, v] : a.kw) ns.dict->set(Value::string(k), v);
      return ns;
    });
  if (name == "dict")
    return make_fn(name, [](Interpreter& in, CallArgs& a, Loc loc) {
      Value d = Value::make_dict();
      for (const auto& p : a.pos) {
        if (!p.is_dict()) in.fail("dict() positional argument must be a mapping", loc);
        for (const auto& kv : p.dict->items) d.dict->set(kv.first, kv.second);
      }
      for (const auto& [k, v] : a.kw) d.dict->set(Value::string(k), v);
      return d;
    });
  if (name == "raise_exception")
    return make_fn(name, [](Interpreter&, CallArgs& a, Loc loc) -> Value {
      std::string msg = a.pos.empty() ? std::string("raise_exception() called") : a.pos[0].to_str();
      throw TemplateError(TemplateError::Kind::Raised, msg, loc);
    });
  if (name == "strftime_now")
    return make_fn(name, [](Interpreter& in, CallArgs& a, Loc loc) {
      const std::string& fmt = str_arg(in, a.get(0, "format"), "strftime_now format", loc);
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[512];
      size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return Value::string(std::string(buf, n));
    });
  return Value::undefined();
}

}  // namespace edgellm::chat::jinja
