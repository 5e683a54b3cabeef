#pragma once
// Speculative decoding: a proposer guesses the next k tokens, the target model runs the last
// token and the k guesses in one batched pass (almost the cost of one token while the batch is
// small: decode is bound by reading the weights), and the guesses are accepted up to the first
// one the target would not have chosen, plus the target's own choice there. The KV cache is
// then rolled back past the rejected guesses.
//
// Exactness: every position's logits go through the same SequenceState (sampler, penalties,
// constraint, stop strings) in the same order as in Session::generate, and the batched pass is
// bit-identical to one-token decode (tests/unit/model/batch_invariance_test.cpp). Each guess is
// judged by the rejection rule (Sampler::verify): accepted with probability min(1, p/q), else
// replaced by a draw from norm(max(0, p - q)), p being the target's distribution after the whole
// sampler chain. Hence:
// - greedy: the output equals plain decoding token for token, whatever the proposer;
// - sampling with deterministic guesses (prompt lookup: q is a point mass, the rule is "draw
//   from p, accept iff the draw is the guess"): token for token plain seeded sampling;
// - sampling with a draft model (q its own distribution under the same chain): every token is
//   distributed exactly as in plain sampling (tests/unit/sampling/speculative_rule_test.cpp), but
//   the tokens are other draws than plain sampling's; a seed still reproduces the run (the draft
//   lengths then ignore the measured pass times).
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/engine.h"
#include "runtime/pass_cost.h"
#include "runtime/proposer.h"

namespace edgellm::runtime {

struct SpeculativeOptions {
  std::shared_ptr<Proposer> proposer;  // required
  int32_t draft_max = 8;               // longest draft per pass (0: plain decoding)
  // Extra cost of drafting and verifying one more token, as a fraction of a one-token pass:
  // sets how much acceptance a draft length needs before it pays. This is the starting value;
  // it is then measured from the passes' times (DraftLength::record_pass).
  float verify_cost = 0.15f;
  // Learn the cost from pass times (off: keep verify_cost, so the lengths chosen do not depend
  // on the machine's speed, as tests need).
  bool learn_cost = true;
  // Passes at draft length 0 before a short probe draft measures the acceptance again.
  int32_t probe_interval = 16;
  // Measured cost of a pass by its length and of a guess (pass_cost.h). When known it prices
  // every draft, and pass times teach nothing (verify_cost and learn_cost are then unused).
  PassCosts costs;
};

// Chooses each pass's draft length from the acceptance measured so far: the length that
// maximises expected tokens per pass over the pass's cost, zero (plain decoding) when no
// length pays, with a probe every probe_interval passes so a change in the text is noticed (the
// interval doubles after each probe that does not bring drafting back, up to kMaxRestFactor times).
// The cost of a draft of k guesses is costs.pass(k + 1) + k * costs.guess one-token passes when
// the costs are measured (SpeculativeOptions::costs), else 1 + k * cost() with cost() learnt
// from pass times; when it learns, the first pass is plain, to time a one-token pass.
//
// Acceptance is estimated per draft position: the i-th guess's chance of being accepted once
// the ones before it were. A guess that continues a run of accepted ones (a copied passage, a
// confident draft that stops by itself at an uncertain guess) is more likely right than the
// first, and one rate for all positions would draft too short there. A position never judged
// yet takes the estimate of the deepest one judged before it, so a draft one guess longer than
// the last is tried once the last one's guesses are accepted often enough to pay for it.
//
// A proposer that reports match lengths (Proposer::match_length) gets one acceptance estimate
// per class of match length (1, 2, 3-4, 5-8, 9-16, 17+ tokens), each starting from m/(m+1) for a
// typical m of its class: a guess that continues a long copied passage is accepted far more
// often than one backed by a single matching token, and a running average over both would
// draft too little during the copy and too much around it.
class DraftLength {
 public:
  explicit DraftLength(const SpeculativeOptions& opts);
  // Draft length for the next pass, whose guesses are backed by a match of `match_length`
  // tokens (0: the proposer does not measure it).
  int32_t next(int32_t match_length = 0);
  // Outcome of a pass: `drafted` guesses were verified, the first `accepted` were right
  // (counted in the class of the last next()).
  void record(int32_t drafted, int32_t accepted);
  // Wall time of a pass (proposing included) that ran `n_tokens`: one-token passes time the
  // base, longer ones the cost of each extra token relative to it.
  void record_pass(int32_t n_tokens, double seconds);
  // Estimated probability that the first guess backed by a match of `match_length` tokens is
  // accepted; acceptance_at: that the guess at `position` (0-based) is, once those before it were.
  float acceptance(int32_t match_length = 0) const { return acceptance_at(0, match_length); }
  float acceptance_at(int32_t position, int32_t match_length = 0) const;
  // Estimated extra cost of one more drafted token, as a fraction of a one-token pass.
  float cost() const { return cost_; }
  int32_t max() const { return max_; }

  static constexpr int32_t kClasses = 7;  // 0: no match length; 1..6: the length classes above
  static int32_t class_of(int32_t match_length);
  // Failed probes double the rest between probes up to this many probe intervals.
  static constexpr int32_t kMaxRestFactor = 8;

 private:
  struct Estimate {
    std::vector<float> accept;  // per draft position; class 0 starts optimistic at 0.6
    std::vector<uint8_t> seen;  // whether the position was ever judged
    int32_t resting = 0;        // passes left at length 0 before the next probe
    int32_t rest = 0;           // length of the next rest (probe_interval, doubled per failed probe)
    bool probed = false;        // the last pass of this class was a probe
    float estimate(int32_t position) const;  // position's estimate, or the one it inherits
  };
  int32_t best_length(const Estimate& e) const;
  double draft_cost(int32_t k) const;

  int32_t max_;
  float cost_;
  int32_t probe_interval_;
  bool learn_;
  PassCosts costs_;
  double t1_ = 0;  // seconds of a one-token pass (0: not timed yet)
  Estimate classes_[kClasses];
  int32_t last_class_ = 0;
};

// This pass's guesses in `draft`: at most `room`, as many as `length` finds worth verifying. A
// cheap proposer guesses first and the length follows its match length; otherwise the length
// is chosen first and only that many guesses are asked for. `context` (every token so far and
// the one about to run) is called only when guesses are wanted, as it may copy the sequence.
void choose_draft(Proposer& proposer, DraftLength& length, int32_t room,
                  const std::function<const std::vector<int32_t>&()>& context, std::vector<int32_t>& draft);

// Session::generate with speculation: same arguments, same result (plus the draft counters).
GenerateResult generate_speculative(Session& session, const std::vector<int32_t>& prompt,
                                    const GenerateParams& params, const SpeculativeOptions& opts,
                                    const TextCallback& on_text = nullptr);

}  // namespace edgellm::runtime
