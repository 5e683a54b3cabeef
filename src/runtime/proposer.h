#pragma once
// Proposers of draft tokens for speculative decoding (speculative.h). A proposer only guesses:
// the target model verifies every guess, so a bad proposer costs time, never correctness.
#include <cstdint>
#include <vector>

namespace edgellm::runtime {

class Proposer {
 public:
  virtual ~Proposer() = default;
  // `context`: every token of the sequence so far (prompt, generated text, and last the token
  // about to be run). Appends at most `max` guesses of the tokens that follow it to `out`
  // (which it clears first); none when it has no guess.
  virtual void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) = 0;
};

// Prompt lookup: finds the longest suffix of the context (n_max down to n_min tokens) that
// occurred earlier in it, and proposes the tokens that followed its latest earlier occurrence.
// Pays off when the answer repeats its input (editing code, extracting fields, quoting).
class PromptLookupProposer : public Proposer {
 public:
  // InvalidArgument unless 1 <= n_min <= n_max.
  explicit PromptLookupProposer(int32_t n_max = 3, int32_t n_min = 1);
  void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) override;

 private:
  int32_t n_max_, n_min_;
};

}  // namespace edgellm::runtime
