#pragma once
// The draft model's speed settings of `run --draft`, `bench --draft` and `serve --draft`
// (--draft-vocab, --draft-p-min): they change which guesses are made, never the answer.
#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "runtime/draft_model.h"

namespace edgellm::cli {

struct DraftSpeed {
  // Tuned on the Qwen2.5-Coder 0.5B drafting for the 1.5B (bench/speculative.py); < 0: the
  // library's defaults (off).
  int32_t vocab = 32768;  // DraftModelProposer::set_head_rows
  float p_min = 0.5f;     // DraftModelProposer::set_min_confidence
};

// --draft-vocab and --draft-p-min, with these defaults, on run, bench and serve.
inline void add_draft_speed_flags(CLI::App& app, DraftSpeed& s) {
  app.add_option("--draft-vocab", s.vocab,
                 "With --draft: the draft guesses among the first N token ids only, a cheaper output head for it "
                 "(0: the whole vocabulary; the answer is the same)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--draft-p-min", s.p_min,
                 "With --draft: a draft stops after a guess the draft model gives less probability (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
}

inline std::shared_ptr<runtime::DraftModelProposer> make_drafter(const runtime::Engine& target, const std::string& path,
                                                                 int32_t n_ctx, const DraftSpeed& speed) {
  auto drafter = std::make_shared<runtime::DraftModelProposer>(target, path, n_ctx);
  if (speed.vocab >= 0) drafter->set_head_rows(speed.vocab);
  if (speed.p_min >= 0) drafter->set_min_confidence(speed.p_min);
  return drafter;
}

}  // namespace edgellm::cli
