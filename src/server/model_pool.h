#pragma once
// The models one server serves (serve -m NAME=PATH ..., --models-preset FILE), chosen by the
// request's "model". Each is loaded on first use with a scheduler of its own and unloaded
// least-recently-used when the next one would not fit the memory budget (--mem-budget) or the
// count (--models-max).
//
// A request holds a lease on its model from before its prompt is tokenized until its answer is
// written. A model is unloaded only when no lease is out, so a generation never outlives its
// weights or KV cache. While a load waits for its victims' requests to finish, new requests for
// those victims wait too (they are draining), so a busy model cannot starve the one waiting.
// One load or swap runs at a time: the old weights are released before the new ones map, and
// memory never holds both beyond the budget.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "runtime/scheduler.h"
#include "server/request.h"

namespace edgellm::server {

// What loading a model's file yields (the CLI resolves names, loads adapters).
struct LoadedParts {
  std::unique_ptr<runtime::Engine> engine;
  model::LoraSet lora;  // adapters every request of this model runs with (--lora)
  // Draft model for speculation (serve --draft; DraftModelProposer::load_draft), or null.
  std::shared_ptr<const runtime::Engine> draft;
};

struct ModelSpec {
  std::string name;          // what clients put in "model"
  // Other names a request may use, e.g. the short name typed after -m ("qwen2.5-coder-1.5b") when
  // the model is served under its file's stem. Names win over aliases.
  std::vector<std::string> aliases;
  std::string path;          // the GGUF file (shown in /v1/models)
  int32_t n_ctx = 4096;      // per slot
  int32_t n_parallel = 4;    // slots
  model::KvTypes kv_types;   // KV cache storage of every slot
  uint64_t mem_bytes = 0;    // memory it takes when loaded (mem_budget.h estimate), counted against the budget
  std::string unfit;         // non-empty: why it cannot load even alone (the budget); requests get this error
  std::function<LoadedParts()> load;
};

// One loaded model. The scheduler is declared last so it stops before the engine it runs on goes.
struct HostedModel {
  std::unique_ptr<runtime::Engine> engine;
  model::LoraSet lora;
  // Guards `lora`: a fine-tuning job (finetune_jobs.h) appends to it while requests read it.
  mutable std::shared_mutex lora_mu;
  std::shared_ptr<const runtime::Engine> draft;  // on the engine's pool: released before it
  GenerateContext gctx;
  int64_t loaded_at = 0;  // unix time
  std::unique_ptr<runtime::Scheduler> sched;
};

class ModelPool;

// Keeps one model loaded while it lives.
class ModelLease {
 public:
  ModelLease(ModelPool& pool, size_t index, HostedModel& model, const ModelSpec& spec)
      : pool_(pool), index_(index), model_(model), spec_(spec) {}
  ~ModelLease();
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;
  HostedModel& model() const { return model_; }
  const ModelSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }

 private:
  ModelPool& pool_;
  size_t index_;
  HostedModel& model_;
  const ModelSpec& spec_;
};

class ModelPool {
 public:
  // Builds a loaded model from its spec (engine, request context, scheduler); may throw.
  using HostFn = std::function<std::unique_ptr<HostedModel>(const ModelSpec&)>;
  // mem_budget 0: no byte limit; max_loaded 0: no count limit. InvalidArgument for no models or
  // a name given twice.
  ModelPool(std::vector<ModelSpec> specs, uint64_t mem_budget, int32_t max_loaded, HostFn host);
  ~ModelPool();

  // The model named `name` ("" : the first one), loaded first if need be. Blocks while it loads or
  // while the models it displaces finish their requests; `alive` (when set) is polled meanwhile and
  // false throws ClientGone. ApiError: 404 model_not_found (listing the served names), 507
  // model_too_large (does not fit the budget even alone), 500 model_load_failed, 503 on shutdown.
  std::shared_ptr<ModelLease> acquire(const std::string& name, const std::function<bool()>& alive = {});

  struct Status {
    const ModelSpec* spec = nullptr;
    std::string state;  // "loaded", "loading", "unloaded"
    int64_t loaded_at = 0;
    int32_t in_flight = 0;  // leases out
    int32_t n_vocab = 0, n_embd = 0, n_layer = 0;  // when loaded
  };
  std::vector<Status> status() const;
  const std::vector<ModelSpec>& specs() const { return specs_; }
  // Summed over the loaded models.
  runtime::SchedulerStats stats() const;
  uint64_t loaded_bytes() const;
  // Wakes every waiting acquire (503) and refuses new ones; loaded models stay until destruction.
  void shutdown();

 private:
  friend class ModelLease;
  enum class State { Unloaded, Loading, Loaded };
  struct Entry {
    std::unique_ptr<HostedModel> hosted;
    State state = State::Unloaded;
    int32_t in_flight = 0;
    int32_t waiting = 0;  // acquires waiting for this model
    bool draining = false;  // chosen to make room: no new leases until unloaded
    uint64_t last_used = 0;
  };

  void release(size_t index);
  size_t find(const std::string& name) const;
  // Starts the swap that makes room for `target`: picks least-recently-used loaded models until it
  // fits; false when no choice fits (cannot happen for a model that fits alone).
  bool plan_swap_locked(size_t target);
  void cancel_swap_locked();
  // Unloads the victims and loads the target with the lock released; the caller holds `lk`.
  void run_swap(std::unique_lock<std::mutex>& lk);

  std::vector<ModelSpec> specs_;
  uint64_t budget_;
  int32_t max_loaded_;
  HostFn host_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> entries_;
  uint64_t tick_ = 0;
  bool stopping_ = false;
  // The swap in progress or waiting for its victims to drain (one at a time).
  long swap_target_ = -1;
  std::vector<size_t> swap_victims_;
  bool swap_running_ = false;
};

}  // namespace edgellm::server
