#pragma once
// Tokens -> syntax tree, following jinja2's grammar and operator precedence.
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace edgellm::chat::jinja {

// Throws TemplateError (Syntax) naming the unexpected token and its line/column.
Program parse(std::vector<Token> tokens);

}  // namespace edgellm::chat::jinja
