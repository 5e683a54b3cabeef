#pragma once
// JSON Schema "pattern" (ECMA-262 regex subset) -> grammar rule for a quoted JSON string whose
// decoded content matches. Supported: literals (incl. UTF-8), escapes \d \D \w \W \s \S \n \t
// \r \uXXXX and escaped punctuation, '.', classes [a-z...] and [^...] (negated classes may only
// list ASCII), groups ( ) and (?: ), alternation |, quantifiers * + ? {m} {m,} {m,n} (lazy
// suffix accepted and ignored), anchors ^ at the start and $ at the end (without them the
// pattern may match anywhere, as JSON Schema specifies). Backreferences and lookaround are
// rejected with InvalidArgument.
#include <string>

#include "sampling/grammar.h"
#include "sampling/json_parts.h"

namespace edgellm::sampling {

int32_t compile_pattern(GrammarBuilder& b, JsonParts& parts, const std::string& pattern);

}  // namespace edgellm::sampling
