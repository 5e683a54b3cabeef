#include "server/model_pool.h"

#include <algorithm>
#include <chrono>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "server/api_error.h"
#include "server/local_job.h"
#include "util/error.h"

namespace edgellm::server {

ModelLease::~ModelLease() { pool_.release(index_); }

ModelPool::ModelPool(std::vector<ModelSpec> specs, uint64_t mem_budget, int32_t max_loaded, HostFn host)
    : specs_(std::move(specs)), budget_(mem_budget), max_loaded_(max_loaded), host_(std::move(host)) {
  if (specs_.empty()) throw InvalidArgument("the server needs at least one model");
  if (max_loaded_ < 0) throw InvalidArgument("--models-max must not be negative");
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name.empty()) throw InvalidArgument("a served model needs a name");
    for (size_t j = 0; j < i; ++j)
      if (specs_[j].name == specs_[i].name)
        throw InvalidArgument("the model name '" + specs_[i].name + "' is given twice; name them with -m NAME=PATH");
    for (const auto& alias : specs_[i].aliases)
      for (size_t j = 0; j < specs_.size(); ++j)
        if (j != i && std::find(specs_[j].aliases.begin(), specs_[j].aliases.end(), alias) != specs_[j].aliases.end())
          throw InvalidArgument("the model name '" + alias + "' stands for two models; name them with -m NAME=PATH");
  }
  entries_.resize(specs_.size());
}

ModelPool::~ModelPool() {
  shutdown();
  // Schedulers stop (finishing what they hold) before their engines go: HostedModel's order.
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& e : entries_) e.hosted.reset();
}

void ModelPool::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

size_t ModelPool::find(const std::string& name) const {
  if (name.empty()) return 0;
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return i;
  for (size_t i = 0; i < specs_.size(); ++i)
    if (std::find(specs_[i].aliases.begin(), specs_[i].aliases.end(), name) != specs_[i].aliases.end()) return i;
  // Quoted whole up to a length worth reading back.
  constexpr size_t kQuote = 256;
  const std::string shown = name.size() > kQuote ? name.substr(0, kQuote) + "..." : name;
  std::string names;
  for (const auto& s : specs_) names += (names.empty() ? "'" : ", '") + s.name + "'";
  throw ApiError(404, "The model '" + shown + "' does not exist; this server serves " + names, "model",
                 "model_not_found");
}

bool ModelPool::plan_swap_locked(size_t target) {
  uint64_t used = 0;
  int32_t count = 0;
  std::vector<size_t> lru;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i == target || entries_[i].state == State::Unloaded) continue;
    used += specs_[i].mem_bytes;
    ++count;
    if (entries_[i].state == State::Loaded) lru.push_back(i);
  }
  std::sort(lru.begin(), lru.end(), [&](size_t a, size_t b) { return entries_[a].last_used < entries_[b].last_used; });
  const uint64_t need = specs_[target].mem_bytes;
  auto fits = [&] { return (budget_ == 0 || used + need <= budget_) && (max_loaded_ == 0 || count < max_loaded_); };
  std::vector<size_t> victims;
  for (size_t v : lru) {
    if (fits()) break;
    victims.push_back(v);
    used -= specs_[v].mem_bytes;
    --count;
  }
  if (!fits()) return false;
  swap_target_ = static_cast<long>(target);
  swap_victims_ = std::move(victims);
  for (size_t v : swap_victims_) entries_[v].draining = true;
  return true;
}

void ModelPool::cancel_swap_locked() {
  for (size_t v : swap_victims_) entries_[v].draining = false;
  swap_victims_.clear();
  swap_target_ = -1;
}

void ModelPool::run_swap(std::unique_lock<std::mutex>& lk) {
  swap_running_ = true;
  const size_t target = static_cast<size_t>(swap_target_);
  std::vector<std::unique_ptr<HostedModel>> gone;
  for (size_t v : swap_victims_) {
    gone.push_back(std::move(entries_[v].hosted));
    entries_[v].state = State::Unloaded;
    entries_[v].draining = false;
  }
  entries_[target].state = State::Loading;
  lk.unlock();
  const bool freed = !gone.empty();
  gone.clear();  // no lease is out on them: their schedulers are idle; frees weights and caches first
#ifdef __GLIBC__
  // Hand the freed blocks back to the system before the next model allocates: loads run on
  // whichever HTTP thread asked, so glibc would serve them from another arena than the one the
  // freed weights sit in, and the process would grow by a model per swap (measured: 490 -> 700 MB).
  if (freed) malloc_trim(0);
#endif
  std::unique_ptr<HostedModel> h;
  std::string err;
  try {
    h = host_(specs_[target]);
  } catch (const std::exception& ex) {
    err = ex.what();
  } catch (...) {
    err = "unknown error";
  }
  lk.lock();
  swap_running_ = false;
  swap_target_ = -1;
  swap_victims_.clear();
  Entry& t = entries_[target];
  if (h) {
    t.hosted = std::move(h);
    t.state = State::Loaded;
    t.last_used = ++tick_;
  } else {
    t.state = State::Unloaded;
  }
  cv_.notify_all();
  if (!t.hosted)
    throw ApiError(500, "cannot load the model '" + specs_[target].name + "': " + err, "model", "model_load_failed");
}

std::shared_ptr<ModelLease> ModelPool::acquire(const std::string& name, const std::function<bool()>& alive) {
  const size_t i = find(name);
  const ModelSpec& spec = specs_[i];
  if (!spec.unfit.empty())
    throw ApiError(507, "The model '" + spec.name + "' does not fit in the memory budget even alone: " + spec.unfit,
                   "model", "model_too_large");
  std::unique_lock<std::mutex> lk(mu_);
  Entry& e = entries_[i];
  ++e.waiting;
  // Leaving (lease, error or client gone) with the lock held: a swap nobody waits for any more is
  // called off, so its victims serve again.
  struct Unwait {
    ModelPool& p;
    Entry& e;
    size_t i;
    ~Unwait() {
      --e.waiting;
      if (p.swap_target_ == static_cast<long>(i) && e.waiting == 0 && !p.swap_running_) p.cancel_swap_locked();
      p.cv_.notify_all();
    }
  } unwait{*this, e, i};
  for (;;) {
    if (stopping_) throw ApiError(503, "the server is shutting down", "", "shutting_down");
    if (e.state == State::Loaded && !e.draining) {
      ++e.in_flight;
      e.last_used = ++tick_;
      return std::make_shared<ModelLease>(*this, i, *e.hosted, spec);
    }
    if (e.state == State::Unloaded && swap_target_ < 0 && !plan_swap_locked(i))
      throw ApiError(507, "The model '" + spec.name + "' does not fit next to the models that cannot be unloaded",
                     "model", "model_too_large");
    if (swap_target_ == static_cast<long>(i) && !swap_running_ &&
        std::all_of(swap_victims_.begin(), swap_victims_.end(), [&](size_t v) { return entries_[v].in_flight == 0; })) {
      run_swap(lk);
      continue;
    }
    cv_.wait_for(lk, std::chrono::milliseconds(200));
    if (alive) {
      lk.unlock();
      const bool ok = alive();
      lk.lock();
      if (!ok) throw ClientGone();
    }
  }
}

void ModelPool::release(size_t index) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    --entries_[index].in_flight;
    entries_[index].last_used = ++tick_;
  }
  cv_.notify_all();
}

std::vector<ModelPool::Status> ModelPool::status() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Status> out;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    Status s;
    s.spec = &specs_[i];
    s.state = e.state == State::Loaded ? "loaded" : e.state == State::Loading ? "loading" : "unloaded";
    s.in_flight = e.in_flight;
    if (e.hosted) {  // copied under the lock: an unload moves `hosted` out under it
      s.loaded_at = e.hosted->loaded_at;
      const auto& c = e.hosted->engine->config();
      s.n_vocab = c.n_vocab;
      s.n_embd = c.n_embd;
      s.n_layer = c.n_layer;
    }
    out.push_back(s);
  }
  return out;
}

runtime::SchedulerStats ModelPool::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  runtime::SchedulerStats sum;
  for (const Entry& e : entries_) {
    if (!e.hosted || !e.hosted->sched) continue;
    const auto s = e.hosted->sched->stats();
    sum.queued += s.queued;
    sum.active += s.active;
    sum.n_slots += s.n_slots;
    sum.steps += s.steps;
    sum.batched_tokens += s.batched_tokens;
    sum.prompt_cache_hits += s.prompt_cache_hits;
  }
  return sum;
}

uint64_t ModelPool::loaded_bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  uint64_t sum = 0;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].state != State::Unloaded) sum += specs_[i].mem_bytes;
  return sum;
}

}  // namespace edgellm::server
