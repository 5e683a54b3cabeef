#pragma once
// Proposers of draft tokens for speculative decoding (speculative.h). A proposer only guesses:
// the target model verifies every guess, so a bad proposer costs time, never correctness.
#include <cstdint>
#include <utility>
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
  // Called once the prompt is in the target's cache, with its tokens: a proposer with state of
  // its own (a draft model's cache) brings it up to them now, as part of the prompt's
  // processing (time to first token), rather than in the first pass that guesses.
  virtual void prefill(const std::vector<int32_t>&) {}
  // The distribution the i-th guess of the last propose() was drawn from, for the rejection rule
  // (Sampler::verify); null: the guess was deterministic (a point mass).
  virtual const std::vector<sampling::TokenProb>* guess_distribution(size_t) const { return nullptr; }
  // Whether, after begin(), its guesses are random draws (they then use its own generator).
  virtual bool samples() const { return false; }
  // Whether guessing is nearly free (a scan of the context, no model pass). Such a proposer
  // guesses before the pass's draft length is chosen, so the length can follow match_length().
  virtual bool cheap() const { return false; }
  // How many tokens of the context back the last propose()'s guesses (prompt lookup: how far
  // the earlier occurrence matches the end of the context); 0 when the proposer has no such
  // measure. Guesses backed by longer matches are accepted more often (DraftLength keeps one
  // estimate per class of match length).
  virtual int32_t match_length() const { return 0; }
};

// Prompt lookup: proposes the tokens that followed the earlier occurrence of the context's end
// that agrees with it longest (up to n_max tokens back; the latest of those that agree as far),
// in the prompt or in the text generated so far, if it agrees at least n_min tokens. Pays off
// when the answer repeats its input (editing code, extracting fields, quoting): the longest
// agreement is the passage being copied rather than a common short phrase elsewhere.
class PromptLookupProposer : public Proposer {
 public:
  // Matches are followed back at most this far to measure match_length().
  static constexpr int32_t kMatchLengthCap = 32;
  // A match past one substituted token needs this many agreeing tokens beyond the substituted
  // one and counts as its whole agreement less kSubstitutionPenalty tokens.
  static constexpr int32_t kSubstitutionMinRun = 4;
  static constexpr int32_t kSubstitutionPenalty = 2;
  // Once this many tokens after the substituted one agree too, the substitution is a rename:
  // later copies of the source's token are guessed as the answer's (at most kMaxRenames kept).
  static constexpr int32_t kRenameConfirmRun = 3;
  static constexpr size_t kMaxRenames = 16;
  // InvalidArgument unless 1 <= n_min <= n_max.
  explicit PromptLookupProposer(int32_t n_max = kMatchLengthCap, int32_t n_min = 1);
  void propose(const std::vector<int32_t>& context, int32_t max, std::vector<int32_t>& out) override;
  // Forgets the renames learnt (a new generation).
  void begin(const sampling::SamplingParams&) override;
  bool cheap() const override { return true; }
  // How far the chosen occurrence matches the context's end (at least the suffix found, up to
  // kMatchLengthCap); 0 after a propose() without guesses.
  int32_t match_length() const override { return match_length_; }

 private:
  int32_t renamed(int32_t token) const;
  void check_renames(const std::vector<int32_t>& context);

  int32_t n_max_, n_min_;
  int32_t match_length_ = 0;
  std::vector<std::pair<int32_t, int32_t>> renames_;  // source token -> the answer's token
  std::vector<int32_t> refused_;  // source tokens whose rename the target contradicted
  // The last propose(): the context's length then, where its guesses were copied from, how many.
  size_t last_len_ = 0, last_from_ = 0, last_n_ = 0;
};

}  // namespace edgellm::runtime
