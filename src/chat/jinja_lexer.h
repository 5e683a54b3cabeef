#pragma once
// Template source -> tokens, with jinja2's whitespace rules: {%- -%} {{- -}} {#- -#} strip,
// trim_blocks drops the newline after a block/comment tag, lstrip_blocks drops the indentation
// before one, {%+ / +%} opt out, one trailing newline of the template is dropped.
#include <string>
#include <vector>

#include "chat/jinja_value.h"

namespace edgellm::chat::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type = Tok::Eof;
  std::string text;  // Data / Name / decoded String / Op spelling
  int64_t ival = 0;
  double fval = 0;
  Loc loc;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws TemplateError (Syntax) with the position of the offending character.
std::vector<Token> tokenize(const std::string& source, const LexOptions& opt);

}  // namespace edgellm::chat::jinja
