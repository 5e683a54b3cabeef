// Expressions: names, attribute/item access (sandboxed like jinja2's
// ImmutableSandboxedEnvironment), slicing, calls, operators with Python semantics.
#include <cmath>

#include "chat/jinja_interp.h"

namespace edgellm::chat::jinja {

namespace {
[[noreturn]] void type_error(Interpreter& in, const std::string& op, const Value& a,
                             const Value& b, Loc loc) {
  in.fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
              b.type_name() + "'",
          loc);
}

// Runs a __builtin_*_overflow op; fails instead of wrapping (Python ints do not overflow).
template <class Op>
int64_t checked(Interpreter& in, Op op, int64_t a, int64_t b, Loc loc) {
  int64_t r = 0;
  if (op(a, b, &r)) in.fail("integer overflow", loc);
  return r;
}
bool add_ovf(int64_t a, int64_t b, int64_t* r) { return __builtin_add_overflow(a, b, r); }
bool sub_ovf(int64_t a, int64_t b, int64_t* r) { return __builtin_sub_overflow(a, b, r); }
bool mul_ovf(int64_t a, int64_t b, int64_t* r) { return __builtin_mul_overflow(a, b, r); }

double py_fmod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

size_t saturating_mul(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

Value repeat(Interpreter& in, const Value& seq, int64_t n, Loc loc) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    in.check_size(saturating_mul(seq.str.size(), static_cast<size_t>(n)), loc);
    in.check_value_bytes(saturating_mul(seq.str.size(), static_cast<size_t>(n)), loc);
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.str;
    return Value::string(std::move(out));
  }
  in.check_size(saturating_mul(seq.list->items.size(), static_cast<size_t>(n)), loc);
  in.check_value_bytes(saturating_mul(seq.list->items.size() * sizeof(Value), static_cast<size_t>(n)), loc);
  std::vector<Value> out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->items.begin(), seq.list->items.end());
  return Value::make_list(std::move(out), seq.list->tuple);
}

// Python printf-style `"fmt" % args` for the common conversions.
Value percent_format(Interpreter& in, const std::string& fmt, const Value& arg, Loc loc) {
  std::vector<Value> args;
  if (arg.is_tuple()) args = arg.list->items;
  else args.push_back(arg);
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out += fmt[i]; continue; }
    if (++i >= fmt.size()) in.fail("incomplete format", loc);
    if (fmt[i] == '%') { out += '%'; continue; }
    std::string key;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) in.fail("incomplete format key", loc);
      key = fmt.substr(i + 1, close - i - 1);
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ #0123456789.").find(fmt[i]) != std::string::npos) spec += fmt[i++];
    if (i >= fmt.size()) in.fail("incomplete format", loc);
    char conv = fmt[i];
    Value v;
    if (!key.empty()) {
      const Value* found = arg.is_dict() ? arg.dict->find(key) : nullptr;
      if (!found) in.fail("format requires a mapping with key '" + key + "'", loc);
      v = *found;
    } else {
      if (next >= args.size()) in.fail("not enough arguments for format string", loc);
      v = args[next++];
    }
    char buf[512];
    if (conv == 's' || conv == 'r') {
      // Width and '-' flag pad by code points, as Python does.
      std::string text = conv == 's' ? v.to_str() : v.repr();
      bool left = spec.find('-') != std::string::npos;
      size_t digits = spec.find_first_of("123456789");
      size_t width = digits == std::string::npos ? 0 : std::strtoul(spec.c_str() + digits, nullptr, 10);
      size_t len = 0;
      for (unsigned char ch : text) len += (ch & 0xC0) != 0x80;
      std::string pad(width > len ? std::min<size_t>(width - len, 1 << 20) : 0, ' ');
      out += left ? text + pad : pad + text;
    }
    else if (conv == 'd' || conv == 'i') {
      if (!v.is_numeric()) in.fail("%d format: a real number is required, not " + v.type_name(), loc);
      std::snprintf(buf, sizeof buf, (spec + "lld").c_str(),
                    static_cast<long long>(v.kind == Kind::Float ? std::trunc(v.f) : v.i));
      out += buf;
    } else if (conv == 'f' || conv == 'e' || conv == 'g' || conv == 'x' || conv == 'X') {
      if (!v.is_numeric()) in.fail(std::string("%") + conv + " format: a number is required", loc);
      if (conv == 'x' || conv == 'X')
        std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), static_cast<long long>(v.i));
      else
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_double());
      out += buf;
    } else {
      in.fail(std::string("unsupported format character '") + conv + "'", loc);
    }
    in.check_size(out.size(), loc);
  }
  if (next < args.size() && !arg.is_dict()) in.fail("not all arguments converted during string formatting", loc);
  return Value::string(std::move(out));
}
}  // namespace

void Interpreter::require_defined(const Value& v, Loc loc) const {
  if (v.is_undefined()) fail(v.str, loc);
}

bool contains(Interpreter& in, const Value& c, const Value& x, Loc loc) {
  switch (c.kind) {
    case Kind::String:
      if (!x.is_string())
        in.fail("'in <string>' requires string as left operand, not " + x.type_name(), loc);
      return c.str.find(x.str) != std::string::npos;
    case Kind::List:
      for (const auto& v : c.list->items)
        if (equals(v, x)) return true;
      return false;
    case Kind::Dict:
    case Kind::Namespace: return c.dict->find(x) != nullptr;
    case Kind::Undefined: return false;
    default: in.fail("argument of type '" + c.type_name() + "' is not iterable", loc);
  }
}

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b, Loc loc) {
  if (op == "~") {
    std::string s = a.to_str() + b.to_str();
    in.check_size(s.size(), loc);
    return Value::string(std::move(s));
  }
  if (op == "in") return Value::boolean(contains(in, b, a, loc));
  in.require_defined(a, loc);
  in.require_defined(b, loc);
  const bool nums = a.is_numeric() && b.is_numeric();
  const bool ints = nums && a.kind != Kind::Float && b.kind != Kind::Float;
  if (op == "+") {
    if (ints) return Value::integer(checked(in, add_ovf, a.i, b.i, loc));
    if (nums) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      in.check_size(a.str.size() + b.str.size(), loc);
      in.check_value_bytes(a.str.size() + b.str.size(), loc);
      if (a.markup == b.markup) {
        Value r = Value::string(a.str + b.str);
        r.markup = a.markup;
        return r;
      }
      // Markup + str escapes the plain side (markupsafe), even without autoescape.
      return Value::safe_string((a.markup ? a.str : html_escape(a.str)) + (b.markup ? b.str : html_escape(b.str)));
    }
    if (a.is_list() && b.is_list() && a.list->tuple == b.list->tuple) {
      in.check_size(a.list->items.size() + b.list->items.size(), loc);
      in.check_value_bytes((a.list->items.size() + b.list->items.size()) * sizeof(Value), loc);
      std::vector<Value> items = a.list->items;
      items.insert(items.end(), b.list->items.begin(), b.list->items.end());
      return Value::make_list(std::move(items), a.list->tuple);
    }
    if (a.is_string())
      in.fail("can only concatenate str (not \"" + b.type_name() + "\") to str", loc);
    if (a.is_list())
      in.fail("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name(), loc);
    type_error(in, op, a, b, loc);
  }
  if (op == "-") {
    if (ints) return Value::integer(checked(in, sub_ovf, a.i, b.i, loc));
    if (nums) return Value::number(a.as_double() - b.as_double());
    type_error(in, op, a, b, loc);
  }
  if (op == "*") {
    if (ints) return Value::integer(checked(in, mul_ovf, a.i, b.i, loc));
    if (nums) return Value::number(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && b.is_numeric() && b.kind != Kind::Float) return repeat(in, a, b.i, loc);
    if ((b.is_string() || b.is_list()) && a.is_numeric() && a.kind != Kind::Float) return repeat(in, b, a.i, loc);
    type_error(in, op, a, b, loc);
  }
  if (op == "/") {
    if (!nums) type_error(in, op, a, b, loc);
    if (b.as_double() == 0) in.fail("division by zero", loc);
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!nums) type_error(in, op, a, b, loc);
    if (b.as_double() == 0) in.fail("integer division or modulo by zero", loc);
    if (ints) {
      if (a.i == INT64_MIN && b.i == -1) in.fail("integer overflow", loc);
      int64_t q = a.i / b.i;
      if ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0))) --q;
      return Value::integer(q);
    }
    return Value::number(std::floor(a.as_double() / b.as_double()));
  }
  if (op == "%") {
    if (a.is_string() && !a.markup) return percent_format(in, a.str, b, loc);
    if (a.is_string()) {  // Markup % args escapes string arguments
      auto esc = [](const Value& v) { return v.is_string() && !v.markup ? Value::string(html_escape(v.str)) : v; };
      Value args = b;
      if (b.is_tuple()) {
        std::vector<Value> items;
        for (const auto& x : b.list->items) items.push_back(esc(x));
        args = Value::make_list(std::move(items), true);
      } else {
        args = esc(b);
      }
      return Value::safe_string(percent_format(in, a.str, args, loc).str);
    }
    if (!nums) type_error(in, op, a, b, loc);
    if (b.as_double() == 0) in.fail("integer division or modulo by zero", loc);
    if (ints) {
      if (b.i == -1) return Value::integer(0);
      int64_t m = a.i % b.i;
      if (m != 0 && ((m < 0) != (b.i < 0))) m += b.i;
      return Value::integer(m);
    }
    return Value::number(py_fmod(a.as_double(), b.as_double()));
  }
  if (op == "**") {
    if (!nums) type_error(in, op, a, b, loc);
    if (ints && b.i >= 0) {
      int64_t result = 1, base = a.i, e = b.i;
      while (e > 0) {
        if (e & 1) result = checked(in, mul_ovf, result, base, loc);
        e >>= 1;
        if (e > 0) base = checked(in, mul_ovf, base, base, loc);
      }
      return Value::integer(result);
    }
    if (a.as_double() == 0 && b.as_double() < 0) in.fail("0.0 cannot be raised to a negative power", loc);
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  in.fail("unknown operator '" + op + "'", loc);
}

Value Interpreter::getattr(const Value& obj, const std::string& name, Loc loc) {
  require_defined(obj, loc);
  if (obj.kind == Kind::Namespace) {
    const Value* v = obj.dict->find(name);
    return v ? *v : Value::undefined("'Namespace' object has no attribute '" + name + "'");
  }
  // Python attribute first (dict.items is the method even if the dict has an "items" key),
  // then item access, as jinja2's getattr does.
  Value m = lookup_method(obj, name);
  if (!m.is_undefined() || m.unsafe) return m;
  if (obj.kind == Kind::Dict) {
    const Value* v = obj.dict->find(name);
    if (v) return *v;
  }
  return Value::undefined("'" + (obj.is_none() ? std::string("None") : obj.type_name() + " object") +
                          "' has no attribute '" + name + "'");
}

Value Interpreter::getitem(const Value& obj, const Value& key, Loc loc) {
  require_defined(obj, loc);
  auto missing = [&]() {
    return Value::undefined("'" + (obj.is_none() ? std::string("None") : obj.type_name() + " object") +
                            "' has no attribute " + key.repr());
  };
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (key.kind == Kind::List && !key.list->tuple) fail("unhashable type: 'list'", loc);
    const Value* v = obj.dict->find(key);
    if (v) return *v;
  } else if ((obj.is_list() || obj.is_string()) && key.is_numeric() && key.kind != Kind::Float) {
    int64_t idx = key.i;
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.list->items.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) return obj.list->items[idx];
    } else {
      std::vector<uint32_t> cps = utf8_decode(obj.str);
      int64_t n = static_cast<int64_t>(cps.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) return Value::string(utf8_encode({cps[idx]}));
    }
    return missing();
  }
  // A string key that is not an item falls back to attribute lookup (methods).
  if (key.is_string() && obj.kind != Kind::Namespace) {
    Value m = lookup_method(obj, key.str);
    if (!m.is_undefined() || m.unsafe) return m;
  }
  return missing();
}

std::vector<Value> Interpreter::iterate(const Value& v, Loc loc) {
  switch (v.kind) {
    case Kind::List: return v.list->items;
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      for (uint32_t cp : utf8_decode(v.str)) chars.push_back(Value::string(utf8_encode({cp})));
      return chars;
    }
    case Kind::Undefined: return {};
    default: fail("'" + v.type_name() + "' object is not iterable", loc);
  }
}

Value Interpreter::eval_slice(const Expr& e) {
  Value obj = eval(*e.a);
  require_defined(obj, e.loc);
  auto part = [&](const ExprPtr& p, bool* present) -> int64_t {
    *present = false;
    if (!p) return 0;
    Value v = eval(*p);
    if (v.is_none()) return 0;
    if (!v.is_numeric() || v.kind == Kind::Float)
      fail("slice indices must be integers or None", p->loc);
    *present = true;
    return v.i;
  };
  bool has_start, has_stop, has_step;
  int64_t start = part(e.b, &has_start), stop = part(e.c, &has_stop), step = part(e.d, &has_step);
  if (!has_step) step = 1;
  if (step == 0) fail("slice step cannot be zero", e.loc);
  std::vector<uint32_t> cps;
  int64_t n;
  if (obj.is_string()) {
    cps = utf8_decode(obj.str);
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    n = static_cast<int64_t>(obj.list->items.size());
  } else {
    return Value::undefined("'" + obj.type_name() + "' object is not subscriptable");
  }
  // Python's slice.indices().
  auto clamp = [&](int64_t v, bool present, int64_t dflt) {
    if (!present) return dflt;
    if (v < 0) v += n;
    if (step > 0) return std::max<int64_t>(0, std::min(v, n));
    return std::max<int64_t>(-1, std::min(v, n - 1));
  };
  int64_t lo = clamp(start, has_start, step > 0 ? 0 : n - 1);
  int64_t hi = clamp(stop, has_stop, step > 0 ? n : -1);
  std::vector<int64_t> idx;
  for (int64_t k = lo; step > 0 ? k < hi : k > hi; k += step) idx.push_back(k);
  if (obj.is_string()) {
    std::vector<uint32_t> out;
    for (int64_t k : idx) out.push_back(cps[k]);
    return Value::string(utf8_encode(out));
  }
  std::vector<Value> out;
  for (int64_t k : idx) out.push_back(obj.list->items[k]);
  return Value::make_list(std::move(out), obj.list->tuple);
}

void Interpreter::collect_args(const Expr& e, CallArgs& args) {
  for (const auto& x : e.items) args.pos.push_back(eval(*x));
  for (const auto& [k, x] : e.kwargs) args.kw.emplace_back(k, eval(*x));
}

Value Interpreter::call_value(const Value& callee, CallArgs& args, Loc loc) {
  if (callee.kind != Kind::Function) {
    if (callee.is_undefined()) fail(callee.str, loc);
    fail("'" + callee.type_name() + "' object is not callable", loc);
  }
  return callee.fn->call(*this, args, loc);
}

Value Interpreter::eval_call(const Expr& e) {
  Value callee = eval(*e.a);
  CallArgs args;
  collect_args(e, args);
  return call_value(callee, args, e.loc);
}

Value Interpreter::eval_filter(const Expr& e, const Value* source) {
  Value input;
  if (!e.a) input = *source;
  else if (e.a->kind == ExprKind::Filter && !source) input = eval(*e.a);
  else if (e.a->kind == ExprKind::Filter) input = eval_filter(*e.a, source);
  else input = eval(*e.a);
  CallArgs args;
  collect_args(e, args);
  return apply_filter(e.name, input, args, e.loc);
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.a);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.items[k]);
    const std::string& op = e.ops[k];
    const Loc loc = e.items[k]->loc;
    bool r;
    if (op == "==") r = equals(left, right);
    else if (op == "!=") r = !equals(left, right);
    else if (op == "in") r = contains(*this, right, left, loc);
    else if (op == "not in") r = !contains(*this, right, left, loc);
    else {
      require_defined(left, loc);
      require_defined(right, loc);
      if (op == "<") r = less_than(left, right, loc);
      else if (op == ">") r = less_than(right, left, loc);
      else if (op == "<=") r = less_than(left, right, loc) || equals(left, right);
      else r = less_than(right, left, loc) || equals(left, right);
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Literal: return e.literal;
    case ExprKind::Name: {
      const Value* v = frame_->lookup(e.name);
      if (v) return *v;
      Value g = lookup_global(e.name);
      if (!g.is_undefined()) return g;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      for (const auto& x : e.items) items.push_back(eval(*x));
      return Value::make_list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      Value d = Value::make_dict();
      for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
        Value key = eval(*e.items[k]);
        if ((key.is_list() && !key.list->tuple) || key.is_dict())
          fail("unhashable type: '" + key.type_name() + "'", e.items[k]->loc);
        d.dict->set(key, eval(*e.items[k + 1]));
      }
      return d;
    }
    case ExprKind::GetAttr: return getattr(eval(*e.a), e.name, e.loc);
    case ExprKind::GetItem: {
      Value obj = eval(*e.a);
      return getitem(obj, eval(*e.b), e.loc);
    }
    case ExprKind::Slice: return eval_slice(e);
    case ExprKind::Call: return eval_call(e);
    case ExprKind::Filter: return eval_filter(e, nullptr);
    case ExprKind::Test: {
      Value v = eval(*e.a);
      CallArgs args;
      collect_args(e, args);
      return Value::boolean(apply_test(e.name, v, args, e.loc) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.a);
      if (e.name == "not") return Value::boolean(!v.truthy());
      require_defined(v, e.loc);
      if (!v.is_numeric()) fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'", e.loc);
      if (e.name == "+") return v.kind == Kind::Float ? v : Value::integer(v.i);
      if (v.kind == Kind::Float) return Value::number(-v.f);
      if (v.i == INT64_MIN) fail("integer overflow", e.loc);
      return Value::integer(-v.i);
    }
    case ExprKind::Binary: {
      if (e.name == "and") {
        Value l = eval(*e.a);
        return l.truthy() ? eval(*e.b) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.a);
        return l.truthy() ? l : eval(*e.b);
      }
      Value l = eval(*e.a);
      Value r = eval(*e.b);
      return binary_op(*this, e.name, l, r, e.loc);
    }
    case ExprKind::Compare: return eval_compare(e);
    case ExprKind::CondExpr:
      if (eval(*e.a).truthy()) return eval(*e.b);
      if (e.c) return eval(*e.c);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.loc.line) +
                              " evaluated to false and no else section was defined.");
  }
  fail("unknown expression", e.loc);
}

}  // namespace edgellm::chat::jinja
