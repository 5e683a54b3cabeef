#pragma once
// Tree-walking evaluator. Scopes follow jinja2: a for-loop iteration and a macro call open a
// new scope, `if` does not; `set` inside a loop is invisible after it (use namespace()).
// Hostile templates are bounded: call depth, loop steps, output and string/list sizes.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "chat/jinja_ast.h"

namespace edgellm::chat::jinja {

struct Options {
  bool trim_blocks = true;        // HF transformers renders with trim_blocks=True
  bool lstrip_blocks = true;      // ... and lstrip_blocks=True
  bool keep_trailing_newline = false;
  bool hf_tojson = true;          // transformers' tojson (json.dumps, no HTML escaping) vs jinja2's
  size_t max_output = 16u << 20;  // bytes of rendered text (and of any one string or list)
  uint64_t max_steps = 5'000'000;  // loop iterations + calls + statements
  int max_depth = 100;            // nested macro calls
  size_t max_value_bytes = 128u << 20;  // values created during a render (see ValueBudget)
};

struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};

class Interpreter {
 public:
  Interpreter(const Options& opt, std::shared_ptr<const Program> program);
  // vars: a dict of template variables (messages, tools, add_generation_prompt, ...).
  std::string render(const Value& vars);

  // Used by filters, tests, methods and builtins.
  const Options& options() const { return opt_; }
  [[noreturn]] void fail(const std::string& msg, Loc loc) const;
  void tick(Loc loc);
  void check_size(size_t n, Loc loc) const;
  // Before building a value of `bytes` bytes: fails if the value budget cannot hold it.
  void check_value_bytes(size_t bytes, Loc loc);
  Value eval(const Expr& e);
  Value call_value(const Value& callee, CallArgs& args, Loc loc);
  Value getattr(const Value& obj, const std::string& name, Loc loc);
  Value getitem(const Value& obj, const Value& key, Loc loc);
  std::vector<Value> iterate(const Value& v, Loc loc);
  // Raises if v is undefined (the error names what was undefined).
  void require_defined(const Value& v, Loc loc) const;
  Value apply_filter(const std::string& name, const Value& v, CallArgs& args, Loc loc);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args, Loc loc);

  // Renders `body` in a fresh scope below `parent`, returning its output (macros, call blocks).
  std::string render_scoped(const Body& body, std::shared_ptr<Frame> scope);
  // Evaluates `e` with `scope` as the current scope (macro default arguments).
  Value eval_in(const Expr& e, std::shared_ptr<Frame> scope);
  std::shared_ptr<Frame> root() const { return root_; }
  Value take_pending_caller();
  // Namespaces are the only mutable values, so the only way to build a reference cycle
  // (ns.me = ns); the interpreter clears them all when it is done.
  void track_namespace(const Value& ns) { namespaces_.push_back(ns.dict); }
  ~Interpreter();

  struct DepthGuard {
    Interpreter& in;
    DepthGuard(Interpreter& i, Loc loc);
    ~DepthGuard() { --in.depth_; }
  };

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body);
  Flow exec_stmt(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void exec_set(const Stmt& s);
  void assign(const Expr& target, const Value& v, Loc loc);
  std::string capture(const Body& body);
  void emit(const std::string& text, Loc loc);
  Value eval_filter(const Expr& e, const Value* source);
  Value eval_binary(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_slice(const Expr& e);
  void collect_args(const Expr& e, CallArgs& args);

  Options opt_;
  std::shared_ptr<const Program> program_;
  std::shared_ptr<Frame> root_;
  std::shared_ptr<Frame> frame_;
  std::string* out_ = nullptr;
  uint64_t steps_ = 0;
  int depth_ = 0;
  ValueBudget budget_;
  Value pending_caller_;
  std::vector<std::shared_ptr<DictData>> namespaces_;
};

// Binary operators with Python semantics (+ - * / // % ** ~ in), shared with filters.
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b, Loc loc);
// Python `x in container`.
bool contains(Interpreter& in, const Value& container, const Value& x, Loc loc);
// Registered globals: range, namespace, dict, raise_exception, strftime_now.
Value lookup_global(const std::string& name);
// str/dict/list methods (`s.strip()`, `d.items()`): a bound callable, or undefined.
Value lookup_method(const Value& obj, const std::string& name);

}  // namespace edgellm::chat::jinja
