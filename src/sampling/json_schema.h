#pragma once
// JSON Schema -> byte-level grammar for constrained decoding.
//
// Supported: type (object/array/string/number/integer/boolean/null, or a list of them),
// properties, required, additionalProperties (false / true / schema), enum, const, items,
// minItems/maxItems, anyOf/oneOf, nested objects, $ref to any "#/..." JSON pointer (e.g.
// #/$defs/X, #/definitions/X, "#"), string minLength/maxLength/pattern (a regex subset),
// boolean schemas, and minimum/maximum/exclusiveMinimum/exclusiveMaximum on integer and number
// (bounded numbers are written without exponent: integers, and n.ddd only where the whole
// interval [n, n+1) fits; a range too narrow for that is an error). Annotations (title, description, default, examples, format, ...) are ignored.
//
// The grammar produces a subset of the valid documents, chosen to keep generation sane:
// properties appear in schema order; additional properties only when additionalProperties is
// true or a schema (when absent, only declared properties are produced unless none are
// declared); whitespace is limited to one space or a newline plus up to 20 spaces/tabs;
// numbers have at most 16 integer and 16 fraction digits and a 2-digit exponent; \u escapes
// exclude surrogates. oneOf is treated like anyOf (exclusivity is not enforced).
//
// Budgets (see src/sampling/README.md): nesting, subschema, enum, anyOf and property counts,
// and the grammar's size; beyond them, and for schemas no document satisfies (e.g. a required
// property that additionalProperties: false forbids), InvalidArgument (GrammarLimitError for
// size budgets).
//
// Unsupported validation keywords (multipleOf, allOf, not, patternProperties, ...) raise
// InvalidArgument naming the keyword and its location, unless options.strict is false, in
// which case they are ignored (the output may then violate them).
#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sampling/grammar.h"

namespace edgellm::sampling {

struct JsonSchemaOptions {
  bool strict = true;
};

// Property order follows the schema text only with ordered_json (nlohmann::json sorts keys).
std::shared_ptr<const Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                                   const JsonSchemaOptions& options = {});
std::shared_ptr<const Grammar> compile_json_schema(const nlohmann::json& schema, const JsonSchemaOptions& options = {});
// Parses `schema_text` first; malformed JSON raises InvalidArgument.
std::shared_ptr<const Grammar> compile_json_schema_text(std::string_view schema_text,
                                                        const JsonSchemaOptions& options = {});
// Any JSON object (plain "JSON mode").
std::shared_ptr<const Grammar> json_object_grammar();
// Any JSON value.
std::shared_ptr<const Grammar> json_value_grammar();

}  // namespace edgellm::sampling
