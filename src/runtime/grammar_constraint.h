#pragma once
// The grammar-constrained decoder (sampling::Constraint) behind the runtime's TokenConstraint
// hook: what `run --json-schema`, the C API's schema option and the server's response formats
// and tool calls all use.
#include <memory>

#include "runtime/sequence.h"
#include "sampling/constraint.h"
#include "sampling/grammar.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::runtime {

// Byte strings of every token (control tokens empty) and the end-of-generation ids.
std::shared_ptr<const sampling::TokenTrie> make_token_trie(const tokenizer::Tokenizer& tok);

// The whole output must match the grammar. The constructor runs Constraint::probe, so a
// grammar too ambiguous for the per-token budget is refused (sampling::GrammarLimitError, an
// InvalidArgument) before any token is generated.
class GrammarTokenConstraint : public TokenConstraint {
 public:
  GrammarTokenConstraint(std::shared_ptr<const sampling::Grammar> g, std::shared_ptr<const sampling::TokenTrie> trie)
      : c_(std::move(g), std::move(trie)) {
    c_.probe();
  }
  void mask(float* logits) override { c_.apply(logits); }
  void accept(int32_t token) override { c_.accept(token); }
  bool complete() const { return c_.is_complete() || c_.is_finished(); }

 private:
  sampling::Constraint c_;
};

}  // namespace edgellm::runtime
