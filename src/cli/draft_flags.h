#pragma once
// The draft model's speed settings of `run --draft` and `bench --draft` (--draft-vocab,
// --draft-p-min): they change which guesses are made, never the answer.
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/draft_model.h"

namespace edgellm::cli {

struct DraftSpeed {
  // Tuned on the Qwen2.5-Coder 0.5B drafting for the 1.5B (bench/speculative.py); < 0: the
  // library's defaults (off), as the server's scheduler uses.
  int32_t vocab = 32768;  // DraftModelProposer::set_head_rows
  float p_min = 0.5f;     // DraftModelProposer::set_min_confidence
};

inline std::shared_ptr<runtime::DraftModelProposer> make_drafter(const runtime::Engine& target, const std::string& path,
                                                                 int32_t n_ctx, const DraftSpeed& speed) {
  auto drafter = std::make_shared<runtime::DraftModelProposer>(target, path, n_ctx);
  if (speed.vocab >= 0) drafter->set_head_rows(speed.vocab);
  if (speed.p_min >= 0) drafter->set_min_confidence(speed.p_min);
  return drafter;
}

}  // namespace edgellm::cli
