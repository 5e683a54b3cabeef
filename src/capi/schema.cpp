#include "capi/schema.h"

#include "runtime/grammar_constraint.h"
#include "sampling/json_schema.h"

namespace edgellm::capi {

std::shared_ptr<runtime::TokenConstraint> schema_constraint(edgellm_model& model, const char* schema) {
  std::call_once(model.trie_once, [&] { model.trie = runtime::make_token_trie(model.engine->tokenizer()); });
  try {
    return std::make_shared<runtime::GrammarTokenConstraint>(sampling::compile_json_schema_text(schema), model.trie);
  } catch (const Error& e) {  // InvalidArgument, GrammarLimitError
    throw Failure{EDGELLM_ERR_SCHEMA, std::string("json_schema: ") + e.what()};
  }
}

}  // namespace edgellm::capi
