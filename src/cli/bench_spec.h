#pragma once
// edgellm bench --lookup / --draft MODEL: plain and speculative greedy decode of one chat prompt,
// back to back in one process (A/B, the order alternating per repetition), with the acceptance.
#include <cstdint>
#include <string>

#include "cli/draft_flags.h"

namespace edgellm::cli {

struct SpecBenchArgs {
  std::string model;        // target (name or GGUF)
  std::string draft;        // draft model, or empty with lookup
  bool lookup = false;
  std::string prompt;       // the user message (a built-in input-grounded one when empty)
  int32_t n_gen = 128;
  int32_t threads = 0;
  int32_t reps = 2;
  int32_t draft_max = 8;
  DraftSpeed draft_speed{-1, -1.f};  // < 0: the library's defaults
  bool json = false;
  // Learn the draft cost from pass times (the policy before measured pass costs), for A/B.
  bool learn_cost = false;
};

// Prints one table row (or one JSON object): t/s plain and speculative, the speed-up, the share
// of guesses accepted, tokens per verifying pass, and whether both texts are the same.
void bench_speculative(const SpecBenchArgs& a);

}  // namespace edgellm::cli
