// Template: lex + parse + check once, render many times.
#include "chat/jinja.h"

#include "chat/jinja_parser.h"

namespace edgellm::chat::jinja {

namespace {
// jinja2 rejects unknown filters and tests when compiling, except inside {% if %} blocks and
// inline if-expressions, where the error is deferred until the call actually runs.
void check_expr(const Expr* e) {
  if (!e || e->kind == ExprKind::CondExpr) return;
  if (e->kind == ExprKind::Filter && !has_filter_or_test(e->name, true))
    throw TemplateError(TemplateError::Kind::Syntax, "no filter named '" + e->name + "'", e->loc);
  if (e->kind == ExprKind::Test && !has_filter_or_test(e->name, false))
    throw TemplateError(TemplateError::Kind::Syntax, "no test named '" + e->name + "'", e->loc);
  for (const auto& x : e->items) check_expr(x.get());
  for (const auto& kv : e->kwargs) check_expr(kv.second.get());
  check_expr(e->a.get());
  check_expr(e->b.get());
  check_expr(e->c.get());
  check_expr(e->d.get());
}
// Left-associative chains (a + b + c ..., x|f|g ..., a.b.c ...) parse iteratively into trees as
// deep as they are long; evaluation recurses over them, so bound the depth. This walk itself
// stops at the limit, so it cannot overflow either.
constexpr int kMaxExprDepth = 256;
void check_depth(const Expr* e, int depth) {
  if (!e) return;
  if (depth > kMaxExprDepth)
    throw TemplateError(TemplateError::Kind::Syntax, "expression nested too deeply", e->loc);
  for (const auto& x : e->items) check_depth(x.get(), depth + 1);
  for (const auto& kv : e->kwargs) check_depth(kv.second.get(), depth + 1);
  check_depth(e->a.get(), depth + 1);
  check_depth(e->b.get(), depth + 1);
  check_depth(e->c.get(), depth + 1);
  check_depth(e->d.get(), depth + 1);
}

// Depth everywhere; filter/test names only outside {% if %} (see check_expr).
void check_body(const Body& body, bool check_names) {
  for (const auto& s : body) {
    std::vector<const Expr*> exprs = {s->expr.get(), s->cond.get(), s->target.get()};
    for (const auto& d : s->defaults) exprs.push_back(d.get());
    for (const auto& br : s->branches) exprs.push_back(br.first.get());
    const bool names_here = check_names && s->kind != StmtKind::If;
    for (const Expr* e : exprs) {
      check_depth(e, 0);
      if (names_here) check_expr(e);
    }
    for (const auto& br : s->branches) check_body(br.second, names_here);
    check_body(s->body, names_here);
    check_body(s->else_body, names_here);
  }
}
}  // namespace

Template::Template(const std::string& source, const Options& opt) : opt_(opt) {
  LexOptions lo;
  lo.trim_blocks = opt.trim_blocks;
  lo.lstrip_blocks = opt.lstrip_blocks;
  lo.keep_trailing_newline = opt.keep_trailing_newline;
  auto program = std::make_shared<Program>(parse(tokenize(source, lo)));
  check_body(program->body, true);
  program_ = std::move(program);
}

std::string Template::render(const Value& vars) const {
  Interpreter in(opt_, program_);
  return in.render(vars);
}

}  // namespace edgellm::chat::jinja
