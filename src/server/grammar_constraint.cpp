#include "server/grammar_constraint.h"

#include <algorithm>

#include "server/api_error.h"
#include "util/error.h"

namespace edgellm::server {

void probe_constraint(sampling::Constraint& c) {
  try {
    c.probe();
  } catch (const sampling::GrammarLimitError& e) {
    throw ApiError(400, std::string("the JSON schema cannot be used for constrained decoding: ") + e.what(), "",
                   "invalid_schema");
  }
}

std::shared_ptr<runtime::GrammarTokenConstraint> grammar_constraint(std::shared_ptr<const sampling::Grammar> g,
                                                                     std::shared_ptr<const sampling::TokenTrie> trie) {
  try {
    return std::make_shared<runtime::GrammarTokenConstraint>(std::move(g), std::move(trie));
  } catch (const sampling::GrammarLimitError& e) {
    throw ApiError(400, std::string("the JSON schema cannot be used for constrained decoding: ") + e.what(), "",
                   "invalid_schema");
  }
}

std::shared_ptr<const sampling::Grammar> wrap_grammar(const sampling::Grammar& inner,
                                                      const std::vector<std::string>& prefixes,
                                                      const std::string& suffix) {
  using G = sampling::Grammar;
  auto g = std::make_shared<G>(inner);
  auto byte_set = [&](uint8_t b) {
    sampling::ByteSet s;
    s.set(b);
    for (size_t i = 0; i < g->sets.size(); ++i)
      if (g->sets[i] == s) return static_cast<int32_t>(i);
    g->sets.push_back(s);
    return static_cast<int32_t>(g->sets.size() - 1);
  };
  const int32_t rule = static_cast<int32_t>(g->alts.size());
  g->alts.emplace_back();
  g->rule_names.push_back("wrapped");
  const std::vector<std::string> pre = prefixes.empty() ? std::vector<std::string>{""} : prefixes;
  for (const auto& p : pre) {
    g->alts.back().push_back(static_cast<int32_t>(g->elems.size()));
    for (char c : p) g->elems.push_back({G::kBytes, byte_set(static_cast<uint8_t>(c))});
    g->elems.push_back({G::kRef, inner.root});
    for (char c : suffix) g->elems.push_back({G::kBytes, byte_set(static_cast<uint8_t>(c))});
    g->elems.push_back({G::kEnd, 0});
  }
  g->root = rule;
  return g;
}

void LazyGrammarConstraint::mask(float* logits) {
  if (active_) c_.apply(logits);
}

void LazyGrammarConstraint::accept(int32_t token) {
  if (active_) {
    c_.accept(token);
    return;
  }
  if (failed_) return;
  if (std::find(trie_->eog().begin(), trie_->eog().end(), token) != trie_->eog().end()) return;
  const size_t before = text_.size();
  text_ += trie_->piece(token);
  // Search only where the trigger could newly end.
  const size_t from = before >= trigger_.size() ? before - trigger_.size() + 1 : 0;
  const size_t at = text_.find(trigger_, from);
  if (at == std::string::npos) return;
  active_ = true;
  try {
    c_.accept_bytes(text_.substr(at + trigger_.size()));
  } catch (const InvalidArgument&) {
    active_ = false;  // the model went its own way inside the token; leave it free
    failed_ = true;
  }
  text_.clear();
}

}  // namespace edgellm::server
