#pragma once
// Proposers of draft tokens for speculative decoding (speculative.h). A proposer only guesses:
// the target model verifies every guess, so a bad proposer costs time, never correctness.
#include <cstdint>
#include <vector>

#include "sampling/sampler.h"

namespace edgellm::runtime {

class Proposer {
 public:
  virtual ~Proposer() = default;
  // `context`: every token of the sequence so far (prompt, generated text, and last the token
  // about to be run). Appends at most `max` guesses of the tokens that follow it to `out`
  // (which it clears first); none when it has no guess.
  virtual void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) = 0;
  // Called once before a generation with its sampling parameters (a proposer that samples its
  // guesses draws them under the same chain).
  virtual void begin(const sampling::SamplingParams&) {}
  // The distribution the i-th guess of the last propose() was drawn from, for the rejection rule
  // (Sampler::verify); null: the guess was deterministic (a point mass).
  virtual const std::vector<sampling::TokenProb>* guess_distribution(size_t) const { return nullptr; }
  // Whether, after begin(), its guesses are random draws (they then use its own generator).
  virtual bool samples() const { return false; }
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
