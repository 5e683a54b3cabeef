// Statements, scopes, macros and loops.
#include "chat/jinja_interp.h"

#include <functional>

namespace edgellm::chat::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

namespace {

// Does the macro body mention `name` (varargs, kwargs, caller)? jinja2 only accepts extra
// arguments when it does.
bool expr_uses(const Expr* e, const std::string& name) {
  if (!e) return false;
  if (e->kind == ExprKind::Name && e->name == name) return true;
  for (const auto& x : e->items)
    if (expr_uses(x.get(), name)) return true;
  for (const auto& kv : e->kwargs)
    if (expr_uses(kv.second.get(), name)) return true;
  return expr_uses(e->a.get(), name) || expr_uses(e->b.get(), name) ||
         expr_uses(e->c.get(), name) || expr_uses(e->d.get(), name);
}
bool body_uses(const Body& body, const std::string& name) {
  for (const auto& s : body) {
    if (expr_uses(s->expr.get(), name) || expr_uses(s->cond.get(), name)) return true;
    for (const auto& br : s->branches)
      if (expr_uses(br.first.get(), name) || body_uses(br.second, name)) return true;
    for (const auto& d : s->defaults)
      if (expr_uses(d.get(), name)) return true;
    if (s->kind != StmtKind::Macro && (body_uses(s->body, name) || body_uses(s->else_body, name)))
      return true;
  }
  return false;
}

class MacroFn : public Callable {
 public:
  MacroFn(const Stmt* def, std::string name, std::shared_ptr<Frame> closure)
      : def_(def), name_(std::move(name)), closure_(closure) {
    varargs_ = body_uses(def->body, "varargs");
    kwargs_ = body_uses(def->body, "kwargs");
  }
  std::string name() const override { return name_; }

  Value call(Interpreter& in, CallArgs& args, Loc loc) override {
    Interpreter::DepthGuard guard(in, loc);
    in.tick(loc);
    auto scope = std::make_shared<Frame>();
    scope->parent = closure_.lock();
    if (!scope->parent) scope->parent = in.root();
    const auto& params = def_->params;
    if (args.pos.size() > params.size() && !varargs_)
      in.fail("macro '" + name_ + "' takes not more than " + std::to_string(params.size()) +
                  " argument(s)",
              loc);
    std::vector<bool> bound(params.size(), false);
    for (size_t k = 0; k < args.pos.size() && k < params.size(); ++k) {
      scope->vars[params[k]] = args.pos[k];
      bound[k] = true;
    }
    Value kwargs = Value::make_dict();
    for (auto& [key, val] : args.kw) {
      size_t idx = 0;
      while (idx < params.size() && params[idx] != key) ++idx;
      if (idx < params.size()) {
        if (bound[idx]) in.fail("macro '" + name_ + "' got multiple values for argument '" + key + "'", loc);
        scope->vars[key] = val;
        bound[idx] = true;
      } else if (kwargs_) {
        kwargs.dict->set(Value::string(key), val);
      } else {
        in.fail("macro '" + name_ + "' takes no keyword argument '" + key + "'", loc);
      }
    }
    Value caller = in.take_pending_caller();
    if (!caller.is_undefined()) scope->vars["caller"] = caller;
    // Defaults are evaluated at call time and may refer to earlier parameters.
    for (size_t k = 0; k < params.size(); ++k) {
      if (bound[k]) continue;
      if (k < def_->defaults.size() && def_->defaults[k])
        scope->vars[params[k]] = in.eval_in(*def_->defaults[k], scope);
      else
        scope->vars[params[k]] = Value::undefined("'" + params[k] + "' is undefined");
    }
    if (varargs_) {
      std::vector<Value> extra;
      for (size_t k = params.size(); k < args.pos.size(); ++k) extra.push_back(args.pos[k]);
      scope->vars["varargs"] = Value::make_list(std::move(extra), true);
    }
    if (kwargs_) scope->vars["kwargs"] = kwargs;
    return Value::string(in.render_scoped(def_->body, scope));
  }

 private:
  const Stmt* def_;
  std::string name_;
  std::weak_ptr<Frame> closure_;  // weak: the scope may hold this macro (no cycle)
  bool varargs_ = false, kwargs_ = false;
};

class CycleFn : public Callable {
 public:
  explicit CycleFn(int64_t index0) : index0_(index0) {}
  std::string name() const override { return "cycle"; }
  Value call(Interpreter& in, CallArgs& args, Loc loc) override {
    if (args.pos.empty()) in.fail("no items for cycling given", loc);
    return args.pos[index0_ % static_cast<int64_t>(args.pos.size())];
  }

 private:
  int64_t index0_;
};

}  // namespace

Interpreter::Interpreter(const Options& opt, std::shared_ptr<const Program> program)
    : opt_(opt), program_(std::move(program)) {}

Interpreter::~Interpreter() {
  for (auto& ns : namespaces_) ns->items.clear();
}

Interpreter::DepthGuard::DepthGuard(Interpreter& i, Loc loc) : in(i) {
  if (++in.depth_ > in.opt_.max_depth) {
    --in.depth_;
    in.fail("maximum recursion depth exceeded (" + std::to_string(in.opt_.max_depth) + ")", loc);
  }
}

void Interpreter::fail(const std::string& msg, Loc loc) const {
  throw TemplateError(TemplateError::Kind::Runtime, msg, loc);
}

void Interpreter::tick(Loc loc) {
  budget_.loc = loc;
  if (++steps_ > opt_.max_steps)
    fail("template exceeded " + std::to_string(opt_.max_steps) + " evaluation steps", loc);
}

void Interpreter::check_value_bytes(size_t bytes, Loc loc) {
  budget_.loc = loc;
  jinja::check_value_bytes(bytes);
}

void Interpreter::check_size(size_t n, Loc loc) const {
  if (n > opt_.max_output)
    fail("result exceeds the " + std::to_string(opt_.max_output) + "-byte output limit", loc);
}

Value Interpreter::take_pending_caller() {
  Value v = pending_caller_;
  pending_caller_ = Value::undefined();
  return v;
}

std::string Interpreter::render(const Value& vars) {
  root_ = std::make_shared<Frame>();
  if (vars.is_dict())
    for (const auto& [k, v] : vars.dict->items)
      if (k.is_string()) root_->vars[k.str] = v;
  frame_ = root_;
  steps_ = 0;
  depth_ = 0;
  budget_ = ValueBudget{0, opt_.max_value_bytes, {}};
  const ValueBudgetScope scope(&budget_);
  std::string out;
  out_ = &out;
  Flow f = exec(program_->body);
  if (f != Flow::Normal) fail("'break' or 'continue' outside of a loop", {});
  out_ = nullptr;
  frame_.reset();
  root_.reset();
  return out;
}

namespace {
struct FrameSwap {
  std::shared_ptr<Frame>& slot;
  std::shared_ptr<Frame> saved;
  FrameSwap(std::shared_ptr<Frame>& s, std::shared_ptr<Frame> next) : slot(s), saved(s) { slot = std::move(next); }
  ~FrameSwap() { slot = saved; }
};
struct OutSwap {
  std::string*& slot;
  std::string* saved;
  OutSwap(std::string*& s, std::string* next) : slot(s), saved(s) { slot = next; }
  ~OutSwap() { slot = saved; }
};
}  // namespace

Value Interpreter::eval_in(const Expr& e, std::shared_ptr<Frame> scope) {
  FrameSwap fs(frame_, std::move(scope));
  return eval(e);
}

std::string Interpreter::render_scoped(const Body& body, std::shared_ptr<Frame> scope) {
  FrameSwap fs(frame_, std::move(scope));
  std::string buf;
  OutSwap os(out_, &buf);
  if (exec(body) != Flow::Normal) fail("'break' or 'continue' outside of a loop", {});
  return buf;
}

std::string Interpreter::capture(const Body& body) {
  std::string buf;
  OutSwap os(out_, &buf);
  if (exec(body) != Flow::Normal) fail("'break' or 'continue' inside a captured block", {});
  return buf;
}

void Interpreter::emit(const std::string& text, Loc loc) {
  out_->append(text);
  check_size(out_->size(), loc);
}

Interpreter::Flow Interpreter::exec(const Body& body) {
  for (const auto& s : body) {
    Flow f = exec_stmt(*s);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s) {
  tick(s.loc);
  switch (s.kind) {
    case StmtKind::Text: emit(s.text, s.loc); break;
    case StmtKind::Print: emit(eval(*s.expr).to_str(), s.loc); break;
    case StmtKind::If:
      for (const auto& [cond, body] : s.branches)
        if (eval(*cond).truthy()) return exec(body);
      return exec(s.else_body);
    case StmtKind::For: return exec_for(s);
    case StmtKind::Set:
    case StmtKind::SetBlock: exec_set(s); break;
    case StmtKind::Macro:
      frame_->vars[s.text] = Value::function(std::make_shared<MacroFn>(&s, s.text, frame_));
      break;
    case StmtKind::CallBlock: {
      pending_caller_ = Value::function(std::make_shared<MacroFn>(&s, "caller", frame_));
      Value r = eval(*s.expr);
      pending_caller_ = Value::undefined();
      emit(r.to_str(), s.loc);
      break;
    }
    case StmtKind::FilterBlock: {
      Value text = Value::string(capture(s.body));
      emit(eval_filter(*s.expr, &text).to_str(), s.loc);
      break;
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
    case StmtKind::Generation: return exec(s.body);
  }
  return Flow::Normal;
}

void Interpreter::exec_set(const Stmt& s) {
  Value v;
  if (s.kind == StmtKind::Set) {
    v = eval(*s.expr);
  } else {
    v = Value::string(capture(s.body));
    if (s.expr) v = eval_filter(*s.expr, &v);
  }
  assign(*s.target, v, s.loc);
}

void Interpreter::assign(const Expr& target, const Value& v, Loc loc) {
  if (target.kind == ExprKind::Name) {
    frame_->vars[target.name] = v;
    return;
  }
  if (target.kind == ExprKind::GetAttr) {
    Value ns = eval(*target.a);
    if (ns.kind != Kind::Namespace) fail("cannot assign attribute on non-namespace object", loc);
    ns.dict->set(Value::string(target.name), v);
    return;
  }
  // Tuple unpacking.
  std::vector<Value> items = iterate(v, loc);
  size_t n = target.items.size();
  if (items.size() < n)
    fail("not enough values to unpack (expected " + std::to_string(n) + ", got " +
             std::to_string(items.size()) + ")",
         loc);
  if (items.size() > n) fail("too many values to unpack (expected " + std::to_string(n) + ")", loc);
  for (size_t k = 0; k < n; ++k) assign(*target.items[k], items[k], loc);
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
  if (s.recursive) fail("recursive for-loops are not supported", s.loc);
  std::vector<Value> items = iterate(eval(*s.expr), s.expr->loc);
  std::shared_ptr<Frame> outer = frame_;
  if (s.cond) {  // inline `if` filters before loop.index / length are computed
    std::vector<Value> kept;
    for (auto& item : items) {
      tick(s.loc);
      auto scope = std::make_shared<Frame>();
      scope->parent = outer;
      FrameSwap fs(frame_, scope);
      assign(*s.target, item, s.loc);
      if (eval(*s.cond).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < n; ++k) {
    tick(s.loc);
    auto scope = std::make_shared<Frame>();
    scope->parent = outer;
    FrameSwap fs(frame_, scope);
    assign(*s.target, items[k], s.loc);
    Value loop = Value::make_dict();
    auto put = [&](const char* key, Value v) {
      loop.dict->items.emplace_back(Value::string(key), std::move(v));
    };
    put("index", Value::integer(k + 1));
    put("index0", Value::integer(k));
    put("revindex", Value::integer(n - k));
    put("revindex0", Value::integer(n - k - 1));
    put("first", Value::boolean(k == 0));
    put("last", Value::boolean(k == n - 1));
    put("length", Value::integer(n));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    if (k > 0) put("previtem", items[k - 1]);
    if (k + 1 < n) put("nextitem", items[k + 1]);
    put("cycle", Value::function(std::make_shared<CycleFn>(k)));
    scope->vars["loop"] = std::move(loop);
    Flow f = exec(s.body);
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

}  // namespace edgellm::chat::jinja
