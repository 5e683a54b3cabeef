#pragma once
// Runtime values of the Jinja engine, with Python semantics: what `{{ x }}` prints (str),
// repr inside containers, truthiness, equality and ordering, and conversion from/to JSON.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/message.h"
#include "util/error.h"

#include "util/utf8.h"

namespace edgellm::chat::jinja {

// Where in the template something happened (1-based; 0 = unknown).
struct Loc {
  int line = 0;
  int col = 0;
};

// Every template failure: syntax, runtime (type errors, undefined access, limits) and
// raise_exception(). what() = "chat template error at line L, column C: message".
class TemplateError : public Error {
 public:
  enum class Kind { Syntax, Runtime, Raised };
  TemplateError(Kind kind, const std::string& message, Loc loc);
  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  Loc loc() const { return loc_; }

 private:
  Kind kind_;
  std::string message_;
  Loc loc_;
};

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };

// Memory budget for values: bytes of strings and of list/dict slots made during one render,
// counted cumulatively when a value is created (string results, lists, dict entries; plain
// copies of existing values are not counted). Bounds what a hostile template can allocate
// (e.g. a list doubled 40 times) long before the output limit would notice.
struct ValueBudget {
  size_t used = 0;
  size_t limit = SIZE_MAX;
  Loc loc;  // the statement being run (for the error)
};
// Makes `b` the budget that value creation on this thread charges, until destroyed.
class ValueBudgetScope {
 public:
  explicit ValueBudgetScope(ValueBudget* b);
  ~ValueBudgetScope();
  ValueBudgetScope(const ValueBudgetScope&) = delete;
  ValueBudgetScope& operator=(const ValueBudgetScope&) = delete;

 private:
  ValueBudget* prev_;
};
// Charges n bytes to the current budget (if any); throws TemplateError beyond its limit.
void charge_value_bytes(size_t n);
// Throws, without charging, if n more bytes would exceed the budget (check before building).
void check_value_bytes(size_t n);

struct Value;
struct ListData;
struct DictData;
struct Callable;

struct Value {
  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string str;                  // String payload; for Undefined the reason it is undefined
  std::shared_ptr<ListData> list;   // List (tuple flag inside)
  std::shared_ptr<DictData> dict;   // Dict and Namespace (namespace is the only mutable one)
  std::shared_ptr<Callable> fn;     // Function
  bool unsafe = false;              // Undefined produced by a blocked attribute (sandbox)
  bool markup = false;              // String marked safe (|safe, |escape): markupsafe.Markup

  static Value undefined(std::string hint = "value is undefined");
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value safe_string(std::string v);  // a markupsafe.Markup
  static Value make_list(std::vector<Value> items = {}, bool tuple = false);
  static Value make_dict();
  static Value make_namespace();
  static Value function(std::shared_ptr<Callable> c);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_numeric() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_tuple() const;
  double as_double() const;  // numeric kinds only

  // Python bool(x).
  bool truthy() const;
  // Python str(x) (what {{ x }} prints; undefined prints as "").
  std::string to_str() const;
  // Python repr(x) (how x appears inside a printed list or dict).
  std::string repr() const;
  // Python type name for error messages ("str", "dict", "NoneType", ...).
  std::string type_name() const;
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
};

// Insertion-ordered mapping, as Python dicts are.
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const;
  void set(const Value& key, Value v);
};

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Named-or-positional lookup for builtins: kw `name`, else pos[index], else nullptr.
  const Value* get(size_t index, const std::string& name) const;
};

class Interpreter;
struct Callable {
  virtual ~Callable() = default;
  virtual std::string name() const = 0;
  virtual Value call(Interpreter& in, CallArgs& args, Loc loc) = 0;
};

// Python `==` (1 == 1.0 == True, containers element-wise, undefined == undefined).
bool equals(const Value& a, const Value& b);
// Python `<`; throws TemplateError for unorderable types.
bool less_than(const Value& a, const Value& b, Loc loc);

// markupsafe.escape: & < > " ' become HTML entities.
std::string html_escape(const std::string& s);

// Python float repr: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string float_repr(double v);
// Python repr of a str: quotes chosen like Python, non-printables escaped.
std::string string_repr(const std::string& s);

// The engine's JSON-shaped values in (objects become dicts in their order); Python's
// json.dumps out.
Value from_json(const chat::Value& j);
struct DumpOptions {
  int indent = -1;            // < 0: one line
  std::string indent_str;     // used when indent_is_string
  bool indent_is_string = false;
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool html_safe = false;     // jinja2's own tojson: escape < > & '
};
std::string json_dumps(const Value& v, const DumpOptions& opt, Loc loc);

// UTF-8 helpers: Python strings index by code point.
std::vector<uint32_t> utf8_decode(const std::string& s);
std::string utf8_encode(const std::vector<uint32_t>& cps);
using edgellm::append_utf8;

}  // namespace edgellm::chat::jinja
