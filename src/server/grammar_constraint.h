#pragma once
// The pieces the server composes constrained decoding from (the whole-output constraint itself
// is runtime::GrammarTokenConstraint).
#include <memory>
#include <string>
#include <vector>

#include "runtime/grammar_constraint.h"
#include "runtime/sequence.h"
#include "sampling/constraint.h"
#include "sampling/grammar.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::server {

using runtime::GrammarTokenConstraint;
using runtime::make_token_trie;

// A grammar matching one of `prefixes`, then `inner`, then `suffix` (all literal bytes).
std::shared_ptr<const sampling::Grammar> wrap_grammar(const sampling::Grammar& inner,
                                                      const std::vector<std::string>& prefixes,
                                                      const std::string& suffix);

// Runs Constraint::probe while the request is parsed, so a grammar too ambiguous for the
// per-token budget is a 400 invalid_schema (ApiError) before it reaches the scheduler.
void probe_constraint(sampling::Constraint& c);

// runtime::GrammarTokenConstraint, with a grammar too ambiguous for the per-token budget
// answered as a 400 invalid_schema (ApiError).
std::shared_ptr<runtime::GrammarTokenConstraint> grammar_constraint(std::shared_ptr<const sampling::Grammar> g,
                                                                     std::shared_ptr<const sampling::TokenTrie> trie);

// Free text until `trigger` appears in the output; from there on the rest must match the
// grammar (e.g. "<tool_call>" then the call's JSON). If the bytes that follow the trigger in
// the same token do not fit, the constraint gives up and the output stays free text.
class LazyGrammarConstraint : public runtime::TokenConstraint {
 public:
  LazyGrammarConstraint(std::string trigger, std::shared_ptr<const sampling::Grammar> g,
                        std::shared_ptr<const sampling::TokenTrie> trie)
      : trigger_(std::move(trigger)), trie_(trie), c_(std::move(g), std::move(trie)) {
    probe_constraint(c_);
  }
  void mask(float* logits) override;
  void accept(int32_t token) override;
  bool active() const { return active_; }

 private:
  std::string trigger_;
  std::shared_ptr<const sampling::TokenTrie> trie_;
  sampling::Constraint c_;
  std::string text_;  // output so far (until activation)
  bool active_ = false;
  bool failed_ = false;
};

}  // namespace edgellm::server
