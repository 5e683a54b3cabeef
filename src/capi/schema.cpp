#include "capi/schema.h"

#include "sampling/json_schema.h"

namespace edgellm::capi {

namespace {

// The whole answer must match the grammar (the server's GrammarTokenConstraint; it lives in a
// layer above this one, and is these few lines).
class SchemaConstraint : public runtime::TokenConstraint {
 public:
  SchemaConstraint(std::shared_ptr<const sampling::Grammar> g, std::shared_ptr<const sampling::TokenTrie> trie)
      : c_(std::move(g), std::move(trie)) {}
  void probe() { c_.probe(); }
  void mask(float* logits) override { c_.apply(logits); }
  void accept(int32_t token) override { c_.accept(token); }

 private:
  sampling::Constraint c_;
};

// Byte strings of every token (control tokens empty) and the end-of-generation ids.
std::shared_ptr<const sampling::TokenTrie> make_trie(const tokenizer::Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_end_of_generation(id)) eog.push_back(id);
    if (!tok.is_control(id)) pieces[static_cast<size_t>(id)] = tok.token_bytes(id);
  }
  return std::make_shared<sampling::TokenTrie>(pieces, eog);
}

}  // namespace

std::shared_ptr<runtime::TokenConstraint> schema_constraint(edgellm_model& model, const char* schema) {
  std::call_once(model.trie_once, [&] { model.trie = make_trie(model.engine->tokenizer()); });
  try {
    auto c = std::make_shared<SchemaConstraint>(sampling::compile_json_schema_text(schema), model.trie);
    c->probe();
    return c;
  } catch (const Error& e) {  // InvalidArgument, GrammarLimitError
    throw Failure{EDGELLM_ERR_SCHEMA, std::string("json_schema: ") + e.what()};
  }
}

}  // namespace edgellm::capi
