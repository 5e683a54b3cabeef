#pragma once
// Continuous-batching scheduler: one thread owns N slots (each a KV cache, the tokens it
// holds for prefix reuse, and the SequenceState of the request it serves). Every step builds
// ONE model::Batch holding one decode token of each running sequence and a prefill chunk of
// each request still reading its prompt, runs one forward pass, and steps each sequence with
// its row of logits. Requests wait in a bounded queue; a full queue is refused at once.
//
// Fairness: decode tokens go first; what is left of the budget is shared among the prefilling
// requests max-min fairly (share_prefill_budget), so a short prompt admitted next to a long one
// has its first token after one pass instead of waiting for the whole long prefill. The budget
// is n_batch for a request running alone and n_batch_shared (smaller) while others run, which
// keeps each pass short enough for their next tokens.
// A cancel is honoured before every pass, so also between the chunks of a long prefill.
//
// Speculation (speculative.h): a job may speculate with prompt lookup or the scheduler's draft
// model. Its slot then puts its next token and k guesses in the same pass as the others' single
// tokens, keeps the prefix the target agrees with plus the target's own token, and rolls its KV
// cache back past the rest; k adapts per slot to the acceptance it measures (0 when it does not
// pay, with probes). Every row goes through the slot's SequenceState as in plain decoding, and
// passes are batch-invariant, so greedy output is plain serving's, byte for byte. Draft models
// propose one slot after another on the scheduler thread (their passes are not batched).
//
// Robustness: an exception from one job's set-up, sampling, constraint or callbacks ends that
// job only (JobOutcome::error; client_error for InvalidArgument) and the thread keeps serving.
//
// Thread safety: submit() / cancel() / stats() may be called from any thread. Callbacks
// (on_text, on_done) run on the scheduler thread and must not block for long.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/draft_model.h"
#include "runtime/engine.h"
#include "runtime/prompt_cache.h"
#include "runtime/speculative.h"
#include "util/error.h"

namespace edgellm::runtime {

// A slot operation asked for while the slot serves a request.
class SlotBusy : public Error {
 public:
  using Error::Error;
};

// How a job speculates: kDefault takes the scheduler's choice (SchedulerOptions::speculation).
enum class SpecMode { kDefault, kOff, kLookup, kDraft };
// The longest draft a job may ask for.
constexpr int32_t kMaxDraftTokens = 32;

struct JobSpeculation {
  SpecMode mode = SpecMode::kDefault;
  int32_t max = -1;  // longest draft per pass, 0..kMaxDraftTokens (0: plain); -1: the scheduler's
};

struct SchedulerOptions {
  int32_t n_slots = 4;
  int32_t n_ctx = 4096;    // per slot
  int32_t max_queue = 16;  // requests waiting for a slot; more are refused
  int32_t n_batch = 256;   // max tokens in one forward pass (prefill chunks share this budget)
  // Max tokens in a pass while more than one request is active. A pass's length is what every
  // running sequence waits for its next token, and what a new request waits before its first
  // pass; smaller passes cost a long prefill little (the weights are streamed once per pass).
  int32_t n_batch_shared = 64;
  model::KvTypes kv_types = {};  // every slot's KV cache storage types (-ctk / -ctv)
  // On-disk prompt cache folder (prompt_cache.h; empty: none). A prompt of at least
  // prompt_cache_min_tokens that ran that many tokens itself is stored when its prefill ends;
  // an admitted request loads the longest stored prefix that beats its slot's own.
  std::string prompt_cache_dir = {};
  int32_t prompt_cache_min_tokens = 256;
  // Context shift (context_shift.h): when a request's prompt continues what a slot holds only
  // after a gap (its conversation lost its oldest turns), the span after the gap is moved down
  // with re-rotated keys instead of recomputed.
  bool context_shift = false;
  // Speculative decoding (speculative.h) of jobs that do not choose (JobSpeculation::kDefault):
  // kOff, kLookup or kDraft (needs `draft`), with drafts of at most draft_max tokens.
  SpecMode speculation = SpecMode::kOff;
  int32_t draft_max = 8;
  // Draft model of the target's vocabulary on its thread pool (DraftModelProposer::load_draft);
  // null: jobs asking for kDraft are refused. Each slot drafts with a session of its own.
  std::shared_ptr<const Engine> draft;
  // Learn each slot's cost of a drafted token from pass times (false: SpeculativeOptions'
  // fixed cost, so draft lengths do not depend on the machine's speed, as tests need).
  bool learn_draft_cost = true;
  // The draft model's speed settings (DraftModelProposer::set_head_rows / set_min_confidence),
  // applied to every slot's drafter: which guesses are made, never the answer.
  int32_t draft_head_rows = DraftModelProposer::kDefaultHeadRows;
  float draft_min_confidence = DraftModelProposer::kDefaultMinConfidence;
};

// What a finished request reports.
struct JobOutcome {
  GenerateResult result;
  std::string error;          // non-empty when the request failed (result is then partial)
  bool client_error = false;  // the error was caused by the request (bad prompt, ...)
  std::vector<float> embedding;  // mean of the final hidden states (embedding jobs)
  double queue_seconds = 0;      // submit -> admitted to a slot
  double ttft_seconds = 0;       // submit -> first generated token (0 if none)
  double total_seconds = 0;      // submit -> done
  uint64_t ttft_steps = 0;       // forward passes from admission to the first token (0 if none)
  // JobRequest::prompt_logprobs >= 0: positions 1..n-1 of the prompt (position 0 has no context).
  std::vector<sampling::PositionLogprobs> prompt_logprobs;
};

struct JobRequest {
  std::vector<int32_t> prompt;
  GenerateParams params;
  // Embedding job: runs the prompt from position 0 and averages the final hidden states;
  // generates nothing.
  bool embedding = false;
  // LoRA adapters this request runs with (empty: the base model). Requests with different sets
  // share forward passes; a slot's cached prefix is reused only under the set that computed it.
  model::LoraSet lora;
  // >= 0: the log-probability of every prompt token after the ones before it, with this many
  // alternatives (echo on /v1/completions). Every prompt row then computes logits; a slot's
  // cached prefix is reused only as far as its rows' log-probabilities are kept (Slot::lp).
  int32_t prompt_logprobs = -1;
  JobSpeculation speculation;                   // kDefault: SchedulerOptions::speculation
  TextCallback on_text;                         // newly complete text (scheduler thread)
  std::function<void(JobOutcome&)> on_done;     // exactly once per accepted job
};

class Scheduler;

// Handle to a submitted request. Destroying it does not cancel; call cancel().
class Job {
 public:
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  explicit Job(JobRequest r) : req(std::move(r)) {}
  JobRequest req;
  std::atomic<bool> cancelled_{false};
  std::chrono::steady_clock::time_point t_submit, t_admit, t_prefill_done, t_first_token;
  uint64_t admit_step = 0, first_token_step = 0;  // Scheduler::steps_ at those moments
  bool got_first_token = false;
};

// How many prompt tokens each prefilling request runs in the next pass, given `budget` tokens
// and the tokens each still has to read (`remaining`, in slot order). Max-min fair: requests
// are served shortest-first, each taking at most an equal share of what is left, so a short
// prompt is read whole at once and long ones split the rest; the sum never exceeds `budget`
// except that a budget of 0 still gives the shortest request one token (progress is
// guaranteed even when decode tokens fill the batch).
std::vector<size_t> share_prefill_budget(size_t budget, const std::vector<size_t>& remaining);

struct SchedulerStats {
  int32_t queued = 0;
  int32_t active = 0;  // slots serving a request
  int32_t n_slots = 0;
  uint64_t steps = 0;           // forward passes run
  uint64_t batched_tokens = 0;  // tokens across all passes
  uint64_t prompt_cache_hits = 0;  // admissions that loaded a prefix from the disk prompt cache
  uint64_t drafted = 0;            // speculative guesses verified
  uint64_t draft_accepted = 0;     // ... and accepted
};

class Scheduler {
 public:
  Scheduler(const Engine& engine, const SchedulerOptions& opts);
  ~Scheduler();  // finishes every pending request as cancelled, then joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates the prompt (throws InvalidArgument: empty, or not fitting a slot's context) and
  // the speculation (a draft length outside 0..kMaxDraftTokens, kDraft without a draft model)
  // and queues it. Returns nullptr when the queue is full (answer 429 / 503).
  std::shared_ptr<Job> submit(JobRequest req);
  // Several requests queued at once (each checked as submit does, all before any is queued), so
  // that those that find free slots are admitted to the same pass. Empty when the queue cannot
  // take them all (then none is queued).
  std::vector<std::shared_ptr<Job>> submit_all(std::vector<JobRequest> reqs);
  SchedulerStats stats() const;

  // Saves / restores slot `id`'s KV state (session_file.h) on the scheduler thread, between
  // passes, so it never races a request. InvalidArgument for a slot that does not exist,
  // SlotBusy while it serves a request, SavedStateError / Error from the file. A restored slot
  // serves the next request whose prompt starts with its tokens without recomputing them. A slot
  // computed under LoRA adapters is saved with its set (lora_key); a restore finds those adapters
  // among `adapters` (the ones loaded) and gives the slot that set, so only requests with the
  // same adapters and scales reuse it. SavedStateError when one of them is not loaded.
  struct SlotFile {
    int32_t n_tokens = 0;
    uint64_t bytes = 0;
    double seconds = 0;
  };
  SlotFile save_slot(int32_t id, const std::string& path);
  SlotFile restore_slot(int32_t id, const std::string& path, const model::LoraSet& adapters = {});
  const SchedulerOptions& options() const { return opts_; }

 private:
  struct Slot {
    Slot(const model::ModelConfig& cfg, int32_t n_ctx, model::KvTypes types) : cache(cfg, n_ctx, types) {}
    model::KvCache cache;
    std::vector<int32_t> tokens;  // what the cache holds, in order
    model::LoraSet lora;          // the adapters that computed the cache (and run the job)
    std::shared_ptr<Job> job;     // null when idle
    std::unique_ptr<SequenceState> seq;
    size_t n_prompt_done = 0;     // prompt tokens in the cache
    size_t n_reused = 0;          // of which came from the previous request's cache
    int32_t next = -1;            // decode: token to run next
    std::vector<double> emb_sum;  // embedding jobs: running sum of hidden rows
    // lp[p]: position p's log-probabilities given tokens[0..p) with kMaxTopLogprobs alternatives,
    // kept from echo jobs' prefills (id -1: not computed). At most tokens.size() + 1 long.
    std::vector<sampling::PositionLogprobs> lp;
    uint64_t last_used = 0;
    // Speculation of the running job (proposer null: plain decoding).
    Proposer* proposer = nullptr;
    std::unique_ptr<DraftLength> length;
    PromptLookupProposer lookup;
    std::unique_ptr<DraftModelProposer> drafter;  // made on first use, kept: its cache holds the last context
    std::vector<int32_t> draft;   // this pass's guesses (after `next`)
    std::vector<int32_t> context; // scratch: tokens + next, what the proposer sees
    double propose_seconds = 0;   // time spent proposing this pass's guesses (-1: a draft catch-up)
  };

  // A job that ended without a slot (cancelled while queued, or its set-up failed); its
  // on_done runs after the queue lock is released.
  struct Unadmitted {
    std::shared_ptr<Job> job;
    JobOutcome outcome;
  };

  // submit's checks; the job it makes is not queued yet.
  std::shared_ptr<Job> checked_job(JobRequest req) const;
  SlotFile slot_file_op(int32_t id, const std::string& path, bool save, const model::LoraSet& adapters);
  void loop();
  void admit_locked(std::vector<Unadmitted>& ended);
  Slot* pick_slot_locked(const JobRequest& req);
  // Prompt tokens of `req` a slot's cache already holds: none for embeddings, or when the slot's
  // cache was computed under other adapters (the prefix cache is keyed by the adapter set).
  static size_t reusable_prefix(const Slot& s, const JobRequest& req);
  void step();
  // Sets up the job's speculation on its slot (admission). Throws what the draft model does.
  void start_speculation(Slot& s, const JobRequest& req);
  // The guesses slot `s` puts after its next token in this pass, at most `room`.
  void propose(Slot& s, size_t room);
  void finish(Slot& s, const std::string& error = "", bool client_error = false);
  void fail_active(const std::string& reason);
  void fail_all_pending(const std::string& reason);

  const Engine& engine_;
  SchedulerOptions opts_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<DiskPromptCache> disk_cache_;  // touched under mu_ (admission) or on the loop thread
  std::atomic<uint64_t> disk_hits_{0};
  model::Workspace ws_;
  std::vector<float> logits_, hidden_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::deque<std::packaged_task<void()>> control_;  // slot operations for the loop thread (under mu_)
  std::atomic<int32_t> active_{0};
  std::atomic<uint64_t> steps_{0}, batched_tokens_{0}, drafted_{0}, draft_accepted_{0};
  uint64_t use_counter_ = 0;
  std::thread thread_;
};

}  // namespace edgellm::runtime
