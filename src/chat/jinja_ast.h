#pragma once
// Syntax tree of a parsed template. Expressions and statements each use one struct with a
// kind tag; which fields a kind uses is listed next to it.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace edgellm::chat::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  Literal,   // literal
  Name,      // name
  List,      // items
  Tuple,     // items
  Dict,      // items as key, value pairs (k0, v0, k1, v1, ...)
  GetAttr,   // a . name
  GetItem,   // a [ b ]
  Slice,     // a [ b : c : d ] (null parts omitted)
  Call,      // a ( items, kwargs )
  Filter,    // a | name ( items, kwargs ); a null inside {% filter %} blocks
  Test,      // a is [not] name ( items )        (negated)
  Unary,     // op a      op: "-", "+", "not"
  Binary,    // a op b    op: + - * / // % ** ~ and or in "not in"
  Compare,   // a (ops[k] items[k])...           chained comparisons
  CondExpr,  // b if a else c (c may be null)
};

struct Expr {
  ExprKind kind;
  Loc loc;
  Value literal;
  std::string name;  // Name, GetAttr attribute, Filter/Test name, operator
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare
  ExprPtr a, b, c, d;
  bool negated = false;
};

enum class StmtKind {
  Text,       // text
  Print,      // expr
  If,         // branches (cond, body)...; else_body
  For,        // targets, expr (iterable), cond (inline if), body, else_body, recursive
  Set,        // targets (Name / Tuple / GetAttr on a namespace), expr
  SetBlock,   // targets (one), body, expr (filter chain or null)
  Macro,      // name, params, defaults (null = required), body
  CallBlock,  // expr (the call), params (caller's), body
  FilterBlock,// expr (filter chain with a null source), body
  Break,
  Continue,
  Generation, // body (transformers' {% generation %}: renders its body unchanged)
};

struct Stmt {
  StmtKind kind;
  Loc loc;
  std::string text;  // Text; Macro name
  ExprPtr expr, target, cond;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
  bool recursive = false;
};

// A parsed template owns its tree; rendering never mutates it.
struct Program {
  Body body;
};

}  // namespace edgellm::chat::jinja
