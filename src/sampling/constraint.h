#pragma once
// Grammar-constrained decoding over a tokenizer vocabulary.
//
// TokenTrie holds the vocabulary's byte strings in a prefix trie (built once, shared by all
// constraints). Constraint walks the grammar matcher along the trie so tokens sharing a prefix
// share the work, and masks every token whose bytes cannot extend the current prefix towards a
// complete document. End-of-generation tokens are allowed only when the document is complete.
// Tokens with an empty byte string (control tokens) are never allowed, except EOG ids.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sampling/grammar.h"

namespace edgellm::sampling {

class TokenTrie {
 public:
  // pieces[id]: the bytes token id decodes to ("" for control tokens); eog: end-of-generation ids.
  TokenTrie(const std::vector<std::string>& pieces, const std::vector<int32_t>& eog);

  int32_t n_vocab() const { return n_vocab_; }
  const std::vector<int32_t>& eog() const { return eog_; }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  size_t n_nodes() const { return byte_.size(); }

  // Nodes in preorder; node 0 is the root (empty prefix). For node i > 0: byte_[i] is its edge,
  // depth_[i] its prefix length, end_[i] one past its subtree; token ids ending there are
  // tok_ids_[tok_begin_[i] .. tok_begin_[i + 1]).
  std::vector<uint8_t> byte_;
  std::vector<uint16_t> depth_;
  std::vector<int32_t> end_;
  std::vector<int32_t> tok_begin_;
  std::vector<int32_t> tok_ids_;

 private:
  int32_t n_vocab_;
  std::vector<std::string> pieces_;
  std::vector<int32_t> eog_;
};

// Work budget of one trie walk (one token's mask), in matcher steps: a fixed multiple of the
// trie's size (walk_budget(), constraint.cpp), so the time per token is bounded for any
// grammar. One parse alive costs about 6 steps per trie node; beyond the budget
// allowed_tokens throws GrammarLimitError.
class Constraint {
 public:
  Constraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> vocab);

  // Checks, before generation, that masks stay within budget: computes the first mask (kept
  // for the first apply) and the masks at states of growing ambiguity (> 2 parses) along a
  // greedy walk of up to 128 bytes that keeps the most parses alive. Throws GrammarLimitError. A heuristic: a
  // grammar costly only elsewhere ends its request when a mask runs over budget.
  void probe();
  uint64_t walk_budget() const;
  uint64_t last_walk_work() const { return last_walk_work_; }
  // Sets logits of disallowed tokens to -inf. logits has n_vocab entries.
  void apply(float* logits);
  // Fills allowed[id] (size n_vocab) with 1 for tokens that may come next.
  void allowed_tokens(std::vector<uint8_t>& allowed);
  // Advances by a token; throws InvalidArgument if the grammar does not allow it.
  void accept(int32_t token);
  // Advances by raw bytes (e.g. a forced prefix); throws if they are not allowed.
  void accept_bytes(const std::string& bytes);
  bool is_complete() const { return state_.complete; }  // EOG allowed now
  bool is_finished() const { return finished_; }         // EOG accepted
  bool allows(int32_t token);
  void reset();

 private:
  bool walk_piece(const std::string& bytes, GrammarMatcher::State& out);

  std::shared_ptr<const TokenTrie> vocab_;
  GrammarMatcher matcher_;
  GrammarMatcher::State state_;
  bool finished_ = false;
  std::vector<uint8_t> allowed_;
  std::vector<GrammarMatcher::State> per_depth_;  // scratch states for the trie walk
  bool allowed_valid_ = false;                     // allowed_ is the mask of state_ (probe)
  uint64_t last_walk_work_ = 0;
};

}  // namespace edgellm::sampling
