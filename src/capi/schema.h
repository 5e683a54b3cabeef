#pragma once
// JSON-schema constraints for edgellm_generate_options.json_schema.
#include <memory>

#include "capi/capi_impl.h"
#include "runtime/sequence.h"

namespace edgellm::capi {

// Compiles the schema and checks that its masks stay within the per-token budget; any problem
// (malformed JSON, an unsupported keyword, too complex) is EDGELLM_ERR_SCHEMA.
std::shared_ptr<runtime::TokenConstraint> schema_constraint(edgellm_model& model, const char* schema);

}  // namespace edgellm::capi
