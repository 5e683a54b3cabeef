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
void check_body(const Body& body) {
  for (const auto& s : body) {
    check_expr(s->expr.get());
    check_expr(s->cond.get());
    check_expr(s->target.get());
    for (const auto& d : s->defaults) check_expr(d.get());
    if (s->kind == StmtKind::If) continue;
    check_body(s->body);
    check_body(s->else_body);
  }
}
}  // namespace

Template::Template(const std::string& source, const Options& opt) : opt_(opt) {
  LexOptions lo;
  lo.trim_blocks = opt.trim_blocks;
  lo.lstrip_blocks = opt.lstrip_blocks;
  lo.keep_trailing_newline = opt.keep_trailing_newline;
  auto program = std::make_shared<Program>(parse(tokenize(source, lo)));
  check_body(program->body);
  program_ = std::move(program);
}

std::string Template::render(const Value& vars) const {
  Interpreter in(opt_, program_);
  return in.render(vars);
}

}  // namespace edgellm::chat::jinja
