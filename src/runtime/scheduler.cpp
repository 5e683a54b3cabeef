#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/context_shift.h"
#include "runtime/session_file.h"
#include "util/error.h"

namespace edgellm::runtime {

using Clock = std::chrono::steady_clock;

static double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

Scheduler::Scheduler(const Engine& engine, const SchedulerOptions& opts) : engine_(engine), opts_(opts) {
  if (opts_.n_slots < 1) throw InvalidArgument("scheduler: need at least one slot (--parallel >= 1)");
  if (opts_.n_ctx < 2) throw InvalidArgument("scheduler: context size must be at least 2 tokens");
  if (opts_.max_queue < 0) throw InvalidArgument("scheduler: queue size must not be negative");
  if (opts_.n_batch < 1 || opts_.n_batch_shared < 1) throw InvalidArgument("scheduler: batch size must be at least 1");
  if (opts_.draft_max < 0 || opts_.draft_max > kMaxDraftTokens)
    throw InvalidArgument("scheduler: the draft length must be between 0 and " + std::to_string(kMaxDraftTokens));
  if (opts_.draft_head_rows < 0)
    throw InvalidArgument("scheduler: the draft vocabulary must be >= 0 tokens (0: all), got " +
                          std::to_string(opts_.draft_head_rows));
  if (!(opts_.draft_min_confidence >= 0.f && opts_.draft_min_confidence <= 1.f))
    throw InvalidArgument("scheduler: the draft's minimum confidence must be in [0, 1]");
  if (opts_.speculation == SpecMode::kDefault) opts_.speculation = SpecMode::kOff;
  if (opts_.speculation == SpecMode::kDraft && !opts_.draft)
    throw InvalidArgument("scheduler: speculation with a draft model needs the draft model");
  for (int32_t i = 0; i < opts_.n_slots; ++i)
    slots_.push_back(std::make_unique<Slot>(engine_.model().cache_config(opts_.kv_types), opts_.n_ctx, opts_.kv_types));
  if (!opts_.prompt_cache_dir.empty())
    disk_cache_ = std::make_unique<DiskPromptCache>(
        engine_, opts_.kv_types, PromptCacheOptions{opts_.prompt_cache_dir, opts_.prompt_cache_min_tokens});
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<Job> Scheduler::checked_job(JobRequest req) const {
  if (req.prompt.empty()) throw InvalidArgument("empty prompt: give at least one token of input");
  const auto n = static_cast<int64_t>(req.prompt.size());
  if (req.embedding ? n > opts_.n_ctx : n >= opts_.n_ctx)
    throw InvalidArgument("the input is " + std::to_string(n) + " tokens but the context holds " +
                          std::to_string(opts_.n_ctx) + "; shorten it or restart the server with a larger -c");
  const int32_t n_vocab = engine_.config().n_vocab;
  for (int32_t id : req.prompt)
    if (id < 0 || id >= n_vocab)
      throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                            std::to_string(n_vocab - 1) + ")");
  for (const auto& e : req.lora.entries)
    if (!e.adapter || !e.adapter->fits(engine_.config()) || !std::isfinite(e.scale))
      throw InvalidArgument("LoRA adapter " + (e.adapter ? e.adapter->path() : std::string("(null)")) +
                            " was not loaded for this model, or its scale is not finite");
  const JobSpeculation& sp = req.speculation;
  if (sp.max < -1 || sp.max > kMaxDraftTokens)
    throw InvalidArgument("the draft length must be between 0 and " + std::to_string(kMaxDraftTokens) + ", got " +
                          std::to_string(sp.max));
  if ((sp.mode == SpecMode::kDraft || (sp.mode == SpecMode::kDefault && opts_.speculation == SpecMode::kDraft)) &&
      !opts_.draft)
    throw InvalidArgument("speculation with a draft model needs one: start the server with --draft MODEL");
  return std::shared_ptr<Job>(new Job(std::move(req)));
}

std::shared_ptr<Job> Scheduler::submit(JobRequest req) {
  std::vector<JobRequest> one;
  one.push_back(std::move(req));
  auto jobs = submit_all(std::move(one));
  return jobs.empty() ? nullptr : jobs[0];
}

std::vector<std::shared_ptr<Job>> Scheduler::submit_all(std::vector<JobRequest> reqs) {
  std::vector<std::shared_ptr<Job>> jobs;
  jobs.reserve(reqs.size());
  for (auto& r : reqs) jobs.push_back(checked_job(std::move(r)));  // all checked before any is queued
  const auto now = Clock::now();
  for (auto& j : jobs) j->t_submit = now;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return {};
    // A free slot admits at once, so only requests beyond the slots count against the queue.
    int32_t idle = 0;
    for (const auto& s : slots_) idle += s->job ? 0 : 1;
    const int64_t waiting_after = static_cast<int64_t>(queue_.size() + jobs.size()) - idle;
    if (waiting_after > opts_.max_queue) return {};
    for (auto& j : jobs) queue_.push_back(j);
  }
  cv_.notify_all();
  return jobs;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  {
    std::lock_guard<std::mutex> lk(mu_);
    st.queued = static_cast<int32_t>(queue_.size());
  }
  st.active = active_.load();
  st.n_slots = opts_.n_slots;
  st.steps = steps_.load();
  st.batched_tokens = batched_tokens_.load();
  st.prompt_cache_hits = disk_hits_.load();
  st.drafted = drafted_.load();
  st.draft_accepted = draft_accepted_.load();
  return st;
}

size_t Scheduler::reusable_prefix(const Slot& s, const JobRequest& req) {
  size_t common = 0;
  if (req.embedding || !(s.lora == req.lora)) return 0;
  while (common < s.tokens.size() && common < req.prompt.size() && s.tokens[common] == req.prompt[common]) ++common;
  return common;
}

Scheduler::Slot* Scheduler::pick_slot_locked(const JobRequest& req) {
  Slot* best = nullptr;
  size_t best_common = 0;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (s.job) continue;
    const size_t common = reusable_prefix(s, req);
    if (!best || common > best_common || (common == best_common && s.last_used < best->last_used)) {
      best = &s;
      best_common = common;
    }
  }
  return best;
}

namespace {

// The outcome of a job that ends before running: cancelled in the queue, or refused at set-up.
JobOutcome unrun_outcome(const std::vector<int32_t>& prompt, Clock::time_point t_submit, const std::string& error,
                         bool client_error) {
  JobOutcome out;
  out.result.finish_reason = error.empty() ? "cancelled" : "error";
  out.result.n_prompt = static_cast<int32_t>(prompt.size());
  out.error = error;
  out.client_error = client_error;
  out.total_seconds = secs(t_submit, Clock::now());
  return out;
}

}  // namespace

void Scheduler::admit_locked(std::vector<Unadmitted>& ended) {
  // Cancelled jobs leave the queue wherever they wait, so they stop counting against its limit.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      ended.push_back({*it, unrun_outcome((*it)->req.prompt, (*it)->t_submit, "", false)});
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty()) {
    auto job = queue_.front();
    Slot* s = pick_slot_locked(job->req);
    if (!s) return;
    queue_.pop_front();
    const auto& prompt = job->req.prompt;
    Job* raw = job.get();
    TextCallback cb = [raw](const std::string& piece) {
      if (raw->cancelled()) return false;
      return raw->req.on_text ? raw->req.on_text(piece) : true;
    };
    // The per-request set-up (sampler parameters, stop strings) can refuse the request: that
    // ends this job only, before the slot is touched.
    std::unique_ptr<SequenceState> seq;
    std::string error;
    bool client_error = false;
    try {
      auto sq = std::make_unique<SequenceState>(engine_.tokenizer(), engine_.config().n_vocab, job->req.params, prompt,
                                                std::move(cb));
      if (!job->req.embedding) start_speculation(*s, job->req);
      seq = std::move(sq);
    } catch (const InvalidArgument& e) {
      error = std::string("invalid request: ") + e.what();
      client_error = true;
    } catch (const std::exception& e) {
      error = std::string("could not start the request: ") + e.what();
    } catch (...) {
      error = "could not start the request";
    }
    if (!seq) {
      s->proposer = nullptr;
      s->length.reset();
      ended.push_back({job, unrun_outcome(prompt, job->t_submit, error, client_error)});
      continue;
    }
    // Always run the last prompt token so its logits exist.
    size_t common = std::min(reusable_prefix(*s, job->req), prompt.size() - 1);
    if (opts_.context_shift && s->tokens.size() > common && s->lora == job->req.lora &&
        !job->req.embedding && s->tokens.size() == static_cast<size_t>(s->cache.size())) {
      const ShiftPlan plan = plan_context_shift(s->tokens, prompt);
      if (plan.len > 0 && plan.keep + plan.len > common) {
        common = std::min(apply_context_shift(engine_.config(), s->cache, s->tokens, plan), prompt.size() - 1);
        // Kept log-probabilities of moved positions were conditioned on the dropped turns.
        if (s->lp.size() > plan.keep) s->lp.resize(plan.keep);
      }
    }
    if (disk_cache_ && !job->req.embedding && job->req.prompt_logprobs < 0) {
      // A longer prefix on disk replaces the slot's own (a failed load leaves the slot empty).
      const size_t got =
          disk_cache_->load_prefix(prompt, lora_key(job->req.lora), common, prompt.size() - 1, s->cache, s->tokens);
      if (got > 0) disk_hits_.fetch_add(1);
      common = got > 0 ? got : std::min(common, s->tokens.size());
    }
    if (job->req.prompt_logprobs >= 0) {
      // Reused positions 1..n need kept log-probabilities (n < common: position n's token must
      // match too); rows n.. run and give positions n+1.. .
      size_t n = 0;
      while (n + 1 < common && n + 1 < s->lp.size() && s->lp[n + 1].id >= 0) ++n;
      common = n;
    }
    s->lora = job->req.lora;
    s->cache.set_size(static_cast<int32_t>(common));
    s->tokens.resize(common);
    if (s->lp.size() > common + 1) s->lp.resize(common + 1);
    s->n_prompt_done = common;
    s->n_reused = common;
    s->next = -1;
    s->emb_sum.assign(job->req.embedding ? static_cast<size_t>(engine_.config().n_embd) : 0, 0.0);
    s->last_used = ++use_counter_;
    s->seq = std::move(seq);
    job->t_admit = Clock::now();
    job->admit_step = steps_.load();
    s->job = std::move(job);
    active_.fetch_add(1);
  }
}

void Scheduler::finish(Slot& s, const std::string& error, bool client_error) {
  auto job = std::move(s.job);
  s.job.reset();
  JobOutcome out;
  const auto now = Clock::now();
  if (s.seq) out.result = std::move(s.seq->result());
  const auto& prompt = job->req.prompt;
  out.result.n_prompt = static_cast<int32_t>(prompt.size());
  out.result.n_prompt_evaluated = static_cast<int32_t>(s.n_prompt_done - s.n_reused);
  if (out.result.finish_reason.empty()) out.result.finish_reason = error.empty() ? "stop" : "error";
  const bool prefilled = s.n_prompt_done >= prompt.size();
  const auto t_pf = prefilled ? job->t_prefill_done : now;
  out.result.prefill_seconds = secs(job->t_admit, t_pf);
  out.result.decode_seconds = prefilled ? secs(job->t_prefill_done, now) : 0.0;
  out.queue_seconds = secs(job->t_submit, job->t_admit);
  out.ttft_seconds = job->got_first_token ? secs(job->t_submit, job->t_first_token) : 0.0;
  out.total_seconds = secs(job->t_submit, now);
  out.ttft_steps = job->got_first_token ? job->first_token_step - job->admit_step : 0;
  out.error = error;
  out.client_error = client_error;
  if (job->req.prompt_logprobs >= 0 && error.empty() && prefilled) {
    const auto top = static_cast<size_t>(job->req.prompt_logprobs);
    for (size_t p = 1; p < prompt.size() && p < s.lp.size(); ++p) {
      auto e = s.lp[p];
      if (e.top.size() > top) e.top.resize(top);
      out.prompt_logprobs.push_back(std::move(e));
    }
  }
  if (job->req.embedding && error.empty() && prefilled) {
    out.embedding.resize(s.emb_sum.size());
    for (size_t i = 0; i < s.emb_sum.size(); ++i)
      out.embedding[i] = static_cast<float>(s.emb_sum[i] / static_cast<double>(prompt.size()));
  }
  if (!error.empty()) {  // the cache may hold a half-written pass: forget it
    s.cache.clear();
    s.tokens.clear();
    s.lp.clear();
  }
  s.seq.reset();
  s.emb_sum.clear();
  s.next = -1;
  s.proposer = nullptr;
  s.length.reset();
  s.draft.clear();
  active_.fetch_sub(1);
  if (job->req.on_done) {
    try { job->req.on_done(out); } catch (...) {}
  }
}

void Scheduler::step() {
  const int32_t n_vocab = engine_.config().n_vocab;
  const int32_t n_embd = engine_.config().n_embd;

  // Cancelled requests leave their slot before any work is spent on them.
  for (auto& sp : slots_)
    if (sp->job && sp->job->cancelled()) {
      if (sp->seq) sp->seq->cancel();
      finish(*sp);
    }

  struct Entry {
    Slot* slot;
    size_t n_tokens;
    int32_t first_row;  // first logits row of this entry (-1: none)
    bool decode;
    bool all_rows = false;  // every token has a logits row (echo prefill)
  };
  std::vector<Entry> entries;
  model::Batch batch;
  bool want_hidden = false;
  int32_t n_active = 0;
  for (const auto& sp : slots_) n_active += sp->job ? 1 : 0;
  const size_t budget = static_cast<size_t>(n_active > 1 ? std::min(opts_.n_batch, opts_.n_batch_shared) : opts_.n_batch);
  // One decode token per running sequence first, so prefills never starve generation; a
  // speculating sequence adds its guesses after it, within what the others' tokens leave.
  size_t n_decoding = 0;
  for (const auto& sp : slots_) n_decoding += sp->job && sp->next >= 0 ? 1 : 0;
  size_t draft_room = budget > n_decoding ? budget - n_decoding : 0;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.job || s.next < 0) continue;
    propose(s, draft_room);
    draft_room -= s.draft.size();
    const int32_t row = static_cast<int32_t>(batch.logit_rows.size());
    const auto held = static_cast<int32_t>(s.tokens.size());
    batch.add(s.next, held, &s.cache, true, &s.lora);
    for (size_t i = 0; i < s.draft.size(); ++i)
      batch.add(s.draft[i], held + 1 + static_cast<int32_t>(i), &s.cache, true, &s.lora);
    entries.push_back({&s, 1 + s.draft.size(), row, true});
  }
  const bool decode_only = entries.size() == static_cast<size_t>(n_active);  // no prompt chunk in this pass
  // Prefill chunks share what the decode tokens left of the budget (see share_prefill_budget).
  std::vector<Slot*> prefilling;
  std::vector<size_t> remaining;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.job || s.next >= 0) continue;
    const size_t n_prompt = s.job->req.prompt.size();
    if (s.n_prompt_done >= n_prompt) continue;
    prefilling.push_back(&s);
    remaining.push_back(n_prompt - s.n_prompt_done);
  }
  const size_t room = budget > batch.size() ? budget - batch.size() : 0;
  const auto shares = share_prefill_budget(room, remaining);
  for (size_t k = 0; k < prefilling.size(); ++k) {
    Slot& s = *prefilling[k];
    const bool echo = s.job->req.prompt_logprobs >= 0;
    // An echo chunk keeps a logits row per token: bounded so the buffer stays small.
    constexpr size_t kEchoChunk = 32;
    const size_t n = echo ? std::min(shares[k], kEchoChunk) : shares[k];
    if (n == 0) continue;
    const auto& prompt = s.job->req.prompt;
    const bool emb = s.job->req.embedding;
    want_hidden |= emb;
    const bool rows = emb || echo;
    const int32_t row = (rows || s.n_prompt_done + n == prompt.size()) ? static_cast<int32_t>(batch.logit_rows.size()) : -1;
    for (size_t i = 0; i < n; ++i) {
      const size_t p = s.n_prompt_done + i;
      batch.add(prompt[p], static_cast<int32_t>(p), &s.cache, rows || p + 1 == prompt.size(), &s.lora);
    }
    entries.push_back({&s, n, row, false, echo});
  }
  if (batch.size() == 0) return;

  logits_.resize(std::max<size_t>(1, batch.logit_rows.size()) * static_cast<size_t>(n_vocab));
  if (want_hidden) hidden_.resize(batch.logit_rows.size() * static_cast<size_t>(n_embd));
  const auto pass_start = Clock::now();
  try {
    engine_.model().forward(batch, ws_, engine_.pool(), batch.logit_rows.empty() ? nullptr : logits_.data(),
                            want_hidden ? hidden_.data() : nullptr);
  } catch (const std::exception& e) {
    for (auto& en : entries) finish(*en.slot, std::string("forward pass failed: ") + e.what());
    return;
  } catch (...) {
    for (auto& en : entries) finish(*en.slot, "forward pass failed");
    return;
  }
  const double pass_seconds = secs(pass_start, Clock::now());
  steps_.fetch_add(1);
  batched_tokens_.fetch_add(batch.size());

  // Bookkeeping for what the pass consumed; collect the sequences that now sample a token.
  struct Pick {
    Slot* slot;
    float* row;  // this sequence's logits (sampling modifies them in place)
    size_t n_guesses = 0;  // speculative guesses run after the token (rows follow `row`)
    size_t accepted = 0;   // ... of which the target agreed with
    int32_t id = -1;
    std::string error;
    bool client_error = false;
  };
  std::vector<Pick> picks;
  picks.reserve(entries.size());
  // No exception below may leave here: the batch's sequences are mid-step.
  for (auto& en : entries) {
    Slot& s = *en.slot;
    Job& job = *s.job;
    const auto& prompt = job.req.prompt;
    float* row = en.first_row >= 0 ? &logits_[static_cast<size_t>(en.first_row) * n_vocab] : nullptr;
    if (en.decode) {
      s.tokens.push_back(s.next);
      s.tokens.insert(s.tokens.end(), s.draft.begin(), s.draft.end());
      ++s.seq->result().n_decode_passes;
      picks.push_back({&s, row, s.draft.size(), 0, -1, {}, false});
      continue;
    } else {
      s.tokens.insert(s.tokens.end(), prompt.begin() + static_cast<ptrdiff_t>(s.n_prompt_done),
                      prompt.begin() + static_cast<ptrdiff_t>(s.n_prompt_done + en.n_tokens));
      if (job.req.embedding) {
        for (size_t r = 0; r < en.n_tokens; ++r) {
          const float* h = &hidden_[(static_cast<size_t>(en.first_row) + r) * n_embd];
          for (int32_t k = 0; k < n_embd; ++k) s.emb_sum[static_cast<size_t>(k)] += h[k];
        }
      }
      if (en.all_rows) {
        // Row r predicts position n_prompt_done + r + 1 (the last prompt row: the first output).
        for (size_t r = 0; r < en.n_tokens; ++r) {
          const size_t p = s.n_prompt_done + r + 1;
          if (p >= prompt.size()) break;
          if (s.lp.size() <= p) s.lp.resize(p + 1);
          try {
            s.lp[p] = sampling::position_logprobs(&logits_[(static_cast<size_t>(en.first_row) + r) * n_vocab], n_vocab,
                                                  prompt[p], sampling::kMaxTopLogprobs);
          } catch (...) {
            s.lp[p] = {};  // invalid logits: the sampler below ends the job with the reason
          }
        }
        row += (en.n_tokens - 1) * static_cast<size_t>(n_vocab);  // the last prompt row samples
      }
      s.n_prompt_done += en.n_tokens;
      if (s.n_prompt_done < prompt.size()) continue;
      job.t_prefill_done = Clock::now();
      if (job.req.embedding) {
        finish(s);
        continue;
      }
      if (disk_cache_ && prompt.size() - s.n_reused >= static_cast<size_t>(opts_.prompt_cache_min_tokens)) {
        try {
          disk_cache_->store(s.cache, s.tokens, lora_key(s.lora));
        } catch (...) {  // a cache that cannot be written must not fail the request
        }
      }
    }
    picks.push_back({&s, row, 0, 0, -1, {}, false});
  }

  // Sampling (a softmax pass or two over the vocabulary per sequence) is independent per
  // sequence: spread it over the pool, which idles between forward passes. Each callback
  // only ever touches its own job, so running it on a worker is safe.
  auto sample_one = [&](Pick& pk) {
    Slot& s = *pk.slot;
    try {
      // Row i follows guess i-1 (row 0: the token run): each goes through the sequence as in
      // plain decoding, judged against guess i, up to the first the target would not choose.
      const size_t k = pk.n_guesses;
      const auto held = static_cast<int32_t>(s.tokens.size() - k - 1);
      for (size_t i = 0;; ++i) {
        const bool guessed = i < k;
        pk.id = s.seq->step(pk.row + i * static_cast<size_t>(n_vocab), held + 1 + static_cast<int32_t>(i),
                            s.cache.n_ctx(), guessed ? s.draft[i] : -1,
                            guessed ? s.proposer->guess_distribution(i) : nullptr);
        pk.accepted = i;
        if (pk.id < 0 || i == k || pk.id != s.draft[i]) break;
      }
    } catch (const InvalidArgument& e) {  // the request's parameters or constraint refused
      pk.error = std::string("sampling failed: ") + e.what();
      pk.client_error = true;
    } catch (const std::exception& e) {
      pk.error = std::string("sampling failed: ") + e.what();
    } catch (...) {
      pk.error = "sampling failed";
    }
  };
  if (picks.size() > 1)
    engine_.pool().run_chunks(static_cast<int64_t>(picks.size()),
                              [&](int64_t i, int) { sample_one(picks[static_cast<size_t>(i)]); });
  else if (!picks.empty())
    sample_one(picks[0]);

  for (auto& pk : picks) {
    Slot& s = *pk.slot;
    Job& job = *s.job;
    if (pk.n_guesses > 0) {
      // Roll back past the rejected guesses; guesses after the end of the sequence were never judged.
      const size_t keep = s.tokens.size() - pk.n_guesses + pk.accepted;
      s.tokens.resize(keep);
      s.cache.truncate(static_cast<int32_t>(keep));
      const size_t judged = pk.id < 0 ? pk.accepted : pk.n_guesses;
      auto& r = s.seq->result();
      r.n_drafted += static_cast<int32_t>(judged);
      r.n_draft_accepted += static_cast<int32_t>(pk.accepted);
      drafted_.fetch_add(judged);
      draft_accepted_.fetch_add(pk.accepted);
      if (s.length) s.length->record(static_cast<int32_t>(judged), static_cast<int32_t>(pk.accepted));
    }
    // Passes that also ran prompt chunks say nothing about the cost of a guess.
    if (s.length && decode_only && s.propose_seconds >= 0)
      s.length->record_pass(static_cast<int32_t>(1 + pk.n_guesses), s.propose_seconds + pass_seconds);
    if (!pk.error.empty()) {
      finish(s, pk.error, pk.client_error);
      continue;
    }
    if (!job.got_first_token && s.seq->result().n_generated > 0) {
      job.got_first_token = true;
      job.t_first_token = Clock::now();
      job.first_token_step = steps_.load();
    }
    if (pk.id < 0) finish(s);
    else s.next = pk.id;
  }
}

// Last resort when a step threw past the per-job handlers: every sequence it touched may be
// half-stepped, so each active one ends with the error and the thread carries on.
void Scheduler::fail_active(const std::string& reason) {
  for (auto& sp : slots_) {
    if (!sp->job) continue;
    try {
      if (sp->seq) sp->seq->cancel();
    } catch (...) {
    }
    finish(*sp, reason);
  }
}

void Scheduler::fail_all_pending(const std::string& reason) {
  std::deque<std::shared_ptr<Job>> q;
  {
    std::lock_guard<std::mutex> lk(mu_);
    q.swap(queue_);
  }
  fail_active(reason);
  for (auto& job : q) {
    JobOutcome out;
    out.error = reason;
    out.result.finish_reason = "cancelled";
    if (job->req.on_done) {
      try { job->req.on_done(out); } catch (...) {}
    }
  }
}

void Scheduler::loop() {
  std::deque<std::packaged_task<void()>> control;
  for (;;) {
    std::vector<Unadmitted> ended;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || active_.load() > 0 || !control_.empty(); });
      if (stop_) break;
      admit_locked(ended);
      control.swap(control_);
    }
    for (auto& task : control) task();  // slot save / restore, between passes
    control.clear();
    for (auto& u : ended)
      if (u.job->req.on_done) {
        try { u.job->req.on_done(u.outcome); } catch (...) {}
      }
    try {
      step();
    } catch (const std::exception& e) {
      fail_active(std::string("internal error: ") + e.what());
    } catch (...) {
      fail_active("internal error");
    }
  }
  fail_all_pending("the server is shutting down");
}

Scheduler::SlotFile Scheduler::slot_file_op(int32_t id, const std::string& path, bool save,
                                            const model::LoraSet& adapters) {
  if (id < 0 || id >= static_cast<int32_t>(slots_.size()))
    throw InvalidArgument("there is no slot " + std::to_string(id) + " (slots are 0.." +
                          std::to_string(slots_.size() - 1) + ")");
  SlotFile result;
  std::packaged_task<void()> task([&, id, save] {
    Slot& s = *slots_[static_cast<size_t>(id)];
    if (s.job) throw SlotBusy("slot " + std::to_string(id) + " is serving a request; try again when it is idle");
    const auto t0 = Clock::now();
    if (save) {
      save_kv_state(engine_, s.cache, s.tokens, path, {}, lora_key(s.lora));
    } else {
      const SavedHead head = peek_saved_state(engine_, opts_.kv_types, path);
      std::optional<model::LoraSet> set = model::LoraSet{};
      if (!head.adapters.empty()) set = lora_set_from_key(head.adapters, adapters);
      if (!set)
        throw SavedStateError(path + ": saved under LoRA adapters (" + head.adapters +
                              ") that are not all loaded here; start the server with the same --lora files");
      s.lora = {};
      s.lp.clear();
      restore_kv_state(engine_, s.cache, s.tokens, path, nullptr, head.adapters);
      s.lora = std::move(*set);
      s.last_used = ++use_counter_;
    }
    result.n_tokens = static_cast<int32_t>(s.tokens.size());
    result.bytes = model::kv_bytes_per_token(engine_.config(), opts_.kv_types) * s.tokens.size();
    result.seconds = secs(t0, Clock::now());
  });
  auto done = task.get_future();
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) throw Error("the server is shutting down");
    control_.push_back(std::move(task));
  }
  cv_.notify_all();
  done.get();  // rethrows what the task threw; broken_promise if the scheduler stopped first
  return result;
}

Scheduler::SlotFile Scheduler::save_slot(int32_t id, const std::string& path) {
  return slot_file_op(id, path, true, {});
}

Scheduler::SlotFile Scheduler::restore_slot(int32_t id, const std::string& path, const model::LoraSet& adapters) {
  return slot_file_op(id, path, false, adapters);
}

std::vector<size_t> share_prefill_budget(size_t budget, const std::vector<size_t>& remaining) {
  std::vector<size_t> out(remaining.size(), 0);
  std::vector<size_t> order(remaining.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return remaining[a] < remaining[b]; });
  size_t left = std::max<size_t>(budget, 1);
  for (size_t k = 0; k < order.size() && left > 0; ++k) {
    const size_t i = order[k];
    // An equal share of what is left among those not yet served; at least one token so the
    // shortest requests move even when the budget is smaller than their number.
    const size_t share = std::max<size_t>(1, left / (order.size() - k));
    out[i] = std::min({remaining[i], share, left});
    left -= out[i];
  }
  return out;
}

}  // namespace edgellm::runtime
