// The scheduler's speculation per slot (scheduler.h, "Speculation"): set-up at admission and the
// guesses of each pass. Verification and rollback are in Scheduler::step.
#include <algorithm>
#include <chrono>

#include "runtime/scheduler.h"
#include "util/error.h"

namespace edgellm::runtime {

void Scheduler::start_speculation(Slot& s, const JobRequest& req) {
  s.proposer = nullptr;
  s.length.reset();
  s.draft.clear();
  const SpecMode mode = req.speculation.mode == SpecMode::kDefault ? opts_.speculation : req.speculation.mode;
  const int32_t max = req.speculation.max >= 0 ? req.speculation.max : opts_.draft_max;
  if (mode == SpecMode::kOff || mode == SpecMode::kDefault || max <= 0) return;
  Proposer* p = &s.lookup;
  if (mode == SpecMode::kDraft) {
    if (!opts_.draft) throw InvalidArgument("speculation with a draft model needs one: start the server with --draft");
    if (!s.drafter) s.drafter = std::make_unique<DraftModelProposer>(opts_.draft, opts_.n_ctx);
    s.drafter->set_head_rows(opts_.draft_head_rows);
    s.drafter->set_min_confidence(opts_.draft_min_confidence);
    // A new prompt's draft prefill runs a shared pass's worth per step, beside the others' tokens.
    s.drafter->set_catch_up_limit(std::max(1, opts_.n_batch_shared));
    p = s.drafter.get();
  }
  p->begin(req.params.sampling);
  SpeculativeOptions so;
  so.draft_max = max;
  // A sampling draft's guesses consume its generator: which are drawn must not depend on the
  // machine's speed, so a seed reproduces the answer (as generate_speculative does).
  so.learn_cost = opts_.learn_draft_cost && !(req.params.sampling.temperature > 0.0f && p->samples());
  s.length = std::make_unique<DraftLength>(so);
  s.proposer = p;
}

void Scheduler::propose(Slot& s, size_t room) {
  s.draft.clear();
  s.propose_seconds = 0;
  if (!s.proposer || !s.seq) return;
  const int64_t held = static_cast<int64_t>(s.tokens.size());
  int64_t k = s.cache.n_ctx() - 1 - held;  // every guess needs a position
  const int32_t max_tokens = s.job->req.params.max_tokens;
  if (max_tokens >= 0) k = std::min<int64_t>(k, max_tokens - s.seq->result().n_generated - 1);  // past the end: waste
  k = std::min<int64_t>(k, static_cast<int64_t>(room));
  if (k <= 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    choose_draft(*s.proposer, *s.length, static_cast<int32_t>(k), [&]() -> const std::vector<int32_t>& {
      s.context.assign(s.tokens.begin(), s.tokens.end());
      s.context.push_back(s.next);
      return s.context;
    }, s.draft);
  } catch (...) {
    // A proposer only guesses: if it fails (a draft model's pass), the job decodes plainly.
    s.draft.clear();
    s.proposer = nullptr;
    s.length.reset();
    return;
  }
  // A draft whose embedding table is padded past the target's could name rows the target lacks.
  const int32_t n_vocab = engine_.config().n_vocab;
  const auto bad = std::find_if(s.draft.begin(), s.draft.end(), [&](int32_t t) { return t < 0 || t >= n_vocab; });
  s.draft.erase(bad, s.draft.end());
  s.propose_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // A catch-up pass's time is the draft's prefill, not the cost of guessing: not learnt from.
  if (s.drafter && s.proposer == s.drafter.get() && !s.drafter->caught_up()) s.propose_seconds = -1;
}

}  // namespace edgellm::runtime
