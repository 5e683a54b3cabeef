// Recursive-descent parser. Precedence, loosest first: ternary if/else, or, and, not,
// comparisons/in, + -, ~, * / // %, **, unary - +, then postfix (. [] ()) and | filters / is tests.
#include "chat/jinja_parser.h"

#include <set>

namespace edgellm::chat::jinja {

namespace {

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Program run() {
    Program p;
    std::string end;
    p.body = parse_body({}, &end);
    return p;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return t_[pos_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::Data: return "text";
      case Tok::VarBegin: return "'{{'";
      case Tok::VarEnd: return "end of print statement '}}'";
      case Tok::BlockBegin: return "'{%'";
      case Tok::BlockEnd: return "end of statement block '%}'";
      case Tok::Name: return "name '" + t.text + "'";
      case Tok::String: return "string";
      case Tok::Int:
      case Tok::Float: return "number " + t.text;
      case Tok::Op: return "'" + t.text + "'";
      case Tok::Eof: return "end of template";
    }
    return "token";
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw TemplateError(TemplateError::Kind::Syntax, msg, cur().loc);
  }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail("unexpected " + describe(cur()) + ", expected " + expected);
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) unexpected(std::string("'") + op + "'");
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) unexpected("a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) unexpected("end of statement block '%}'");
    advance();
  }
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };
  ExprPtr node(ExprKind k, Loc loc) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->loc = loc;
    return e;
  }

  // ---- statements ----
  // Parses until a block tag whose name is in `ends`; leaves the stream after that name and
  // stores it in *end.
  Body parse_body(const std::set<std::string>& ends, std::string* end) {
    DepthGuard g(*this);
    Body body;
    while (true) {
      const Token& tk = cur();
      if (tk.type == Tok::Eof) {
        if (!ends.empty()) {
          std::string list;
          for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
          fail("unexpected end of template, expected " + list);
        }
        return body;
      }
      if (tk.type == Tok::Data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Text;
        s->loc = tk.loc;
        s->text = tk.text;
        body.push_back(std::move(s));
        advance();
      } else if (tk.type == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Print;
        s->loc = tk.loc;
        advance();
        s->expr = parse_tuple(true, false);
        if (cur().type != Tok::VarEnd) unexpected("end of print statement '}}'");
        advance();
        body.push_back(std::move(s));
      } else if (tk.type == Tok::BlockBegin) {
        advance();
        if (cur().type != Tok::Name) unexpected("a statement name");
        if (ends.count(cur().text)) {
          *end = cur().text;
          advance();
          return body;
        }
        body.push_back(parse_statement());
      } else {
        unexpected("text or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    auto s = std::make_unique<Stmt>();
    s->loc = cur().loc;
    std::string tag = cur().text;
    advance();
    std::string end;
    if (tag == "for") {
      s->kind = StmtKind::For;
      s->target = parse_assign_target(false);
      if (!skip_name("in")) unexpected("'in'");
      s->expr = parse_tuple(false, false, {"recursive"});
      if (skip_name("if")) s->cond = parse_expression(true);
      if (skip_name("recursive")) s->recursive = true;
      expect_block_end();
      s->body = parse_body({"endfor", "else"}, &end);
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, &end);
      }
      expect_block_end();
    } else if (tag == "if") {
      s->kind = StmtKind::If;
      while (true) {
        ExprPtr cond = parse_tuple(false, false);
        expect_block_end();
        Body b = parse_body({"elif", "else", "endif"}, &end);
        s->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") continue;
        if (end == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, &end);
        }
        expect_block_end();
        break;
      }
    } else if (tag == "set") {
      s->target = parse_assign_target(true);
      if (skip_op("=")) {
        s->kind = StmtKind::Set;
        s->expr = parse_tuple(true, false);
        expect_block_end();
      } else {
        s->kind = StmtKind::SetBlock;
        if (s->target->kind != ExprKind::Name) fail("block set needs a single name");
        if (is_op("|")) s->expr = parse_filter_chain(nullptr);
        expect_block_end();
        s->body = parse_body({"endset"}, &end);
        expect_block_end();
      }
    } else if (tag == "macro") {
      s->kind = StmtKind::Macro;
      s->text = expect_name();
      parse_params(*s);
      expect_block_end();
      s->body = parse_body({"endmacro"}, &end);
      if (cur().type == Tok::Name && cur().text == s->text) advance();
      expect_block_end();
    } else if (tag == "call") {
      s->kind = StmtKind::CallBlock;
      if (is_op("(")) parse_params(*s);
      s->expr = parse_expression(true);
      if (s->expr->kind != ExprKind::Call) fail("expected a call after 'call'");
      expect_block_end();
      s->body = parse_body({"endcall"}, &end);
      expect_block_end();
    } else if (tag == "filter") {
      s->kind = StmtKind::FilterBlock;
      s->expr = parse_filter_chain(nullptr, /*leading_bar=*/false);
      expect_block_end();
      s->body = parse_body({"endfilter"}, &end);
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      s->kind = tag == "break" ? StmtKind::Break : StmtKind::Continue;
      expect_block_end();
    } else if (tag == "generation") {
      s->kind = StmtKind::Generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, &end);
      expect_block_end();
    } else if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" ||
               tag == "block") {
      pos_--;
      fail("tag '" + tag + "' is not supported in chat templates");
    } else {
      pos_--;
      fail("encountered unknown tag '" + tag + "'");
    }
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      s.params.push_back(expect_name());
      if (skip_op("=")) s.defaults.push_back(parse_expression(true));
      else if (!s.defaults.empty() && s.defaults.back()) fail("non-default argument follows default argument");
      else s.defaults.push_back(nullptr);
    }
    expect_op(")");
  }

  // Names, tuples of names, or (with_namespace) name.attr.
  ExprPtr parse_assign_target(bool with_namespace) {
    Loc loc = cur().loc;
    std::vector<ExprPtr> items;
    bool parens = skip_op("(");
    while (true) {
      Loc l = cur().loc;
      std::string n = expect_name();
      ExprPtr e;
      if (with_namespace && is_op(".") && peek().type == Tok::Name) {
        advance();
        e = node(ExprKind::GetAttr, l);
        e->a = node(ExprKind::Name, l);
        e->a->name = n;
        e->name = expect_name();
      } else {
        e = node(ExprKind::Name, l);
        e->name = n;
      }
      items.push_back(std::move(e));
      if (!skip_op(",")) break;
      if (cur().type != Tok::Name) break;
    }
    if (parens) expect_op(")");
    if (items.size() == 1 && !parens) return std::move(items[0]);
    auto t = node(ExprKind::Tuple, loc);
    t->items = std::move(items);
    return t;
  }

  // ---- expressions ----
  // Comma-separated expressions form a tuple (as in `{{ a, b }}` or `set x = 1, 2`).
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens,
                      const std::set<std::string>& extra_end = {}) {
    Loc loc = cur().loc;
    std::vector<ExprPtr> items;
    bool comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        comma = true;
      }
      if (tuple_ends(extra_end)) break;
      items.push_back(parse_expression(with_condexpr));
    }
    if (!comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) unexpected("an expression");
    auto t = node(ExprKind::Tuple, loc);
    t->items = std::move(items);
    return t;
  }
  bool tuple_ends(const std::set<std::string>& extra_end) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || cur().type == Tok::Eof) return true;
    if (is_op(")") || is_op("=")) return true;
    if (cur().type == Tok::Name && extra_end.count(cur().text)) return true;
    return false;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard g(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      Loc loc = cur().loc;
      advance();
      auto c = node(ExprKind::CondExpr, loc);
      c->a = parse_or();
      c->b = std::move(e);
      if (skip_name("else")) {
        DepthGuard g(*this);
        c->c = parse_condexpr();
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, Loc loc) {
    auto e = node(ExprKind::Binary, loc);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      Loc loc = cur().loc;
      advance();
      e = binary("or", std::move(e), parse_and(), loc);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      Loc loc = cur().loc;
      advance();
      e = binary("and", std::move(e), parse_not(), loc);
    }
    return e;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard g(*this);
      auto e = node(ExprKind::Unary, cur().loc);
      advance();
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    Loc loc = cur().loc;
    ExprPtr first = parse_math1();
    auto cmp = node(ExprKind::Compare, loc);
    while (true) {
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    if (cmp->ops.empty()) return first;
    cmp->a = std::move(first);
    return cmp;
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      Loc loc = cur().loc;
      advance();
      e = binary(op, std::move(e), parse_concat(), loc);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      Loc loc = cur().loc;
      advance();
      e = binary("~", std::move(e), parse_math2(), loc);
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      Loc loc = cur().loc;
      advance();
      e = binary(op, std::move(e), parse_pow(), loc);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      Loc loc = cur().loc;
      advance();
      e = binary("**", std::move(e), parse_unary(true), loc);
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard g(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(ExprKind::Unary, cur().loc);
      e->name = cur().text;
      advance();
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& tk = cur();
    Loc loc = tk.loc;
    if (tk.type == Tok::Name) {
      auto e = node(ExprKind::Literal, loc);
      if (tk.text == "true" || tk.text == "True") e->literal = Value::boolean(true);
      else if (tk.text == "false" || tk.text == "False") e->literal = Value::boolean(false);
      else if (tk.text == "none" || tk.text == "None") e->literal = Value::none();
      else {
        e->kind = ExprKind::Name;
        e->name = tk.text;
      }
      advance();
      return e;
    }
    if (tk.type == Tok::String) {
      std::string s;
      while (cur().type == Tok::String) {  // adjacent literals concatenate
        s += cur().text;
        advance();
      }
      auto e = node(ExprKind::Literal, loc);
      e->literal = Value::string(std::move(s));
      return e;
    }
    if (tk.type == Tok::Int || tk.type == Tok::Float) {
      auto e = node(ExprKind::Literal, loc);
      e->literal = tk.type == Tok::Int ? Value::integer(tk.ival) : Value::number(tk.fval);
      advance();
      return e;
    }
    if (skip_op("(")) {
      ExprPtr e = parse_tuple(true, true);
      expect_op(")");
      return e;
    }
    if (skip_op("[")) {
      auto e = node(ExprKind::List, loc);
      while (!is_op("]")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("]")) break;
        e->items.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (skip_op("{")) {
      auto e = node(ExprKind::Dict, loc);
      while (!is_op("}")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("}")) break;
        e->items.push_back(parse_expression(true));
        expect_op(":");
        e->items.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".") || is_op("[")) e = parse_subscript(std::move(e));
      else if (is_op("(")) e = parse_call(std::move(e));
      else return e;
    }
  }
  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) e = parse_filter_chain(std::move(e));
      else if (is_name("is")) e = parse_test(std::move(e));
      else if (is_op("(")) e = parse_call(std::move(e));
      else return e;
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    Loc loc = cur().loc;
    if (skip_op(".")) {
      if (cur().type == Tok::Name) {
        auto e = node(ExprKind::GetAttr, loc);
        e->a = std::move(obj);
        e->name = cur().text;
        advance();
        return e;
      }
      if (cur().type == Tok::Int) {
        auto e = node(ExprKind::GetItem, loc);
        e->a = std::move(obj);
        e->b = node(ExprKind::Literal, cur().loc);
        e->b->literal = Value::integer(cur().ival);
        advance();
        return e;
      }
      unexpected("an attribute name");
    }
    expect_op("[");
    ExprPtr index;
    auto slice_part = [&]() -> ExprPtr {
      if (is_op(":") || is_op("]")) return nullptr;
      return parse_expression(true);
    };
    ExprPtr start = slice_part();
    if (is_op(":")) {
      advance();
      auto e = node(ExprKind::Slice, loc);
      e->a = std::move(obj);
      e->b = std::move(start);
      e->c = slice_part();
      if (skip_op(":")) e->d = slice_part();
      expect_op("]");
      return e;
    }
    if (!start) unexpected("an index");
    if (is_op(",")) {  // obj[a, b] indexes with a tuple
      auto t = node(ExprKind::Tuple, start->loc);
      t->items.push_back(std::move(start));
      while (skip_op(",") && !is_op("]")) t->items.push_back(parse_expression(true));
      start = std::move(t);
    }
    expect_op("]");
    auto e = node(ExprKind::GetItem, loc);
    e->a = std::move(obj);
    e->b = std::move(start);
    return e;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.items.empty() || !e.kwargs.empty()) expect_op(",");
      if (is_op(")")) break;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail("positional argument follows keyword argument");
        e.items.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = node(ExprKind::Call, cur().loc);
    e->a = std::move(callee);
    parse_call_args(*e);
    return e;
  }

  // `| name(args) | name2 ...`; source may be null for {% filter %} blocks and {% set x | f %}.
  ExprPtr parse_filter_chain(ExprPtr source, bool leading_bar = true) {
    ExprPtr e = std::move(source);
    bool first = true;
    while ((first && !leading_bar) || skip_op("|")) {
      first = false;
      auto f = node(ExprKind::Filter, cur().loc);
      f->name = expect_name();
      while (is_op(".") && peek().type == Tok::Name) {  // dotted filter names
        advance();
        f->name += "." + expect_name();
      }
      if (is_op("(")) parse_call_args(*f);
      f->a = std::move(e);
      e = std::move(f);
      if (!is_op("|")) break;
    }
    return e;
  }

  ExprPtr parse_test(ExprPtr subject) {
    auto e = node(ExprKind::Test, cur().loc);
    advance();  // 'is'
    if (skip_name("not")) e->negated = true;
    e->name = expect_name();
    while (is_op(".") && peek().type == Tok::Name) {
      advance();
      e->name += "." + expect_name();
    }
    e->a = std::move(subject);
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with is");
      e->items.push_back(parse_postfix(parse_primary()));
    }
    return e;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Program parse(std::vector<Token> tokens) { return Parser(std::move(tokens)).run(); }

}  // namespace edgellm::chat::jinja
