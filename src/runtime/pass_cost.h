#pragma once
// What a speculative pass costs, by its length, in one-token passes of the target model: the
// draft-length policy (speculative.h) weighs expected tokens against it. It is measured once,
// before generating, by timing passes side by side (a k-token pass between two one-token
// passes), not learnt from a generation's own passes: the machine's memory bandwidth swings by 2x
// from minute to minute, and a one-token time learnt from a few early passes then mis-prices
// every later draft. Adjacent passes see the same bandwidth, so their ratio holds.
#include <cstdint>
#include <vector>

namespace edgellm::runtime {

class Engine;

struct PassCosts {
  // verify[n - 1]: time of an n-token pass over that of a one-token pass (verify[0] = 1).
  // Empty: not known (the policy then learns a linear cost from pass times).
  std::vector<float> verify;
  // One guess of the proposer (a draft model's one-token pass), in the target's one-token
  // passes; 0 for a proposer that only scans the context.
  float guess = 0.f;
  bool known() const { return !verify.empty(); }
  // Cost of an n-token pass (n >= 1); past the table it grows by the table's last step.
  double pass(int32_t n) const;
};

// Times passes of 1..n_max tokens of `engine` after `depth` tokens of context (a scratch
// session), `rounds` times: each n-token pass runs between two one-token passes and costs its
// time over their mean; the median over the rounds is kept. InvalidArgument unless
// 1 <= n_max <= 64, rounds >= 1 and depth >= 1.
PassCosts measure_pass_costs(const Engine& engine, int32_t n_max, int32_t rounds = 3, int32_t depth = 64);

// A draft model's guess in the target's one-token passes, from the bytes each reads per token
// (both passes are bound by memory bandwidth, so their ratio does not move with it): the
// draft's matrices with its output head cut to its first `head_rows` rows (0: all), over the
// target's matrices.
float guess_cost_from_bytes(const Engine& target, const Engine& draft, int32_t head_rows);

}  // namespace edgellm::runtime
