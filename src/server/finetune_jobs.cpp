#include "server/finetune_jobs.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <shared_mutex>

#include "model/lora.h"
#include "ops/thread_pool.h"
#include "server/api_error.h"
#include "server/server_impl.h"
#include "train/data.h"
#include "train/finetune.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string make_id(const char* prefix, uint64_t n) {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%06llx%010llx", prefix, static_cast<unsigned long long>(n & 0xffffff),
                static_cast<unsigned long long>(rng() & 0xffffffffffULL));
  return buf;
}

bool finished(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

// "auto" (or absent/null) -> nullopt; otherwise an integer / number in [lo, hi].
std::optional<double> hyper(const ojson& h, const char* key, double lo, double hi, bool integer) {
  if (!h.contains(key) || h[key].is_null()) return std::nullopt;
  const ojson& v = h[key];
  if (v.is_string() && v.get<std::string>() == "auto") return std::nullopt;
  const std::string param = std::string("hyperparameters.") + key;
  if (!v.is_number() || (integer && !v.is_number_integer()))
    throw ApiError(400, param + " must be \"auto\" or " + (integer ? "an integer" : "a number"), param, "invalid_type");
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi))
    throw ApiError(400, param + " must be between " + std::to_string(lo) + " and " + std::to_string(hi), param,
                   "invalid_value");
  return d;
}

std::string string_field(const ojson& body, const char* key, bool required) {
  if (!body.contains(key) || body[key].is_null()) {
    if (required) throw ApiError(400, std::string("\"") + key + "\" is required", key, "missing_required_parameter");
    return "";
  }
  if (!body[key].is_string()) throw ApiError(400, std::string("\"") + key + "\" must be a string", key, "invalid_type");
  return body[key].get<std::string>();
}

// The training thread and the pool threads it starts run at the lowest priority (nice is per
// thread on Linux, and threads inherit it from the one that creates them).
void lower_priority() {
#ifdef __linux__
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
#endif
}

}  // namespace

FineTuning::FineTuning(ServerState& st, std::string dir, bool remove_dir)
    : st_(st), dir_(std::move(dir)), remove_dir_(remove_dir) {
  thread_ = std::thread([this] { worker(); });
}

FineTuning::~FineTuning() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    for (auto& j : jobs_) j->cancel.store(true);
  }
  cv_.notify_all();
  thread_.join();
  if (remove_dir_) {
    std::error_code ec;  // best effort: a failure must not throw from a destructor
    std::filesystem::remove_all(dir_, ec);
  }
}

namespace {
ojson file_to_json(const FtFile& f) {
  return {{"id", f.id}, {"object", "file"}, {"bytes", f.content.size()}, {"created_at", f.created_at},
          {"filename", f.filename}, {"purpose", f.purpose}, {"status", "processed"}, {"status_details", nullptr}};
}
}  // namespace

ojson FineTuning::add_file(std::string filename, std::string purpose, std::string content) {
  if (purpose != "fine-tune")
    throw ApiError(400, "purpose '" + purpose + "' is not supported by this server; use 'fine-tune'", "purpose",
                   "invalid_value");
  std::lock_guard<std::mutex> lk(mu_);
  FtFile f;
  f.id = make_id("file-", ++next_id_);
  f.filename = std::move(filename);
  f.purpose = std::move(purpose);
  f.content = std::move(content);
  f.created_at = now();
  const std::string id = f.id;
  return file_to_json(files_[id] = std::move(f));
}

ojson FineTuning::file_json(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  const auto it = files_.find(id);
  if (it == files_.end()) throw ApiError(404, "No such File object: " + id, "id", "not_found");
  return file_to_json(it->second);
}

ojson FineTuning::list_files() const {
  std::lock_guard<std::mutex> lk(mu_);
  ojson data = ojson::array();
  for (const auto& [id, f] : files_) data.push_back(file_to_json(f));
  return {{"object", "list"}, {"data", data}, {"has_more", false}};
}

ojson FineTuning::create(const ojson& body) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_request_error");
  auto job = std::make_shared<FtJob>();
  job->model = string_field(body, "model", false);
  if (job->model.empty()) job->model = st_.pool->specs().front().name;
  bool known = false;
  for (const auto& s : st_.pool->specs()) known = known || s.name == job->model;
  if (!known) throw ApiError(404, "The model '" + job->model + "' does not exist", "model", "model_not_found");
  job->training_file = string_field(body, "training_file", true);
  job->validation_file = string_field(body, "validation_file", false);
  job->suffix = string_field(body, "suffix", false);
  if (job->suffix.size() > 64) throw ApiError(400, "\"suffix\" is longer than 64 characters", "suffix", "invalid_value");
  for (char c : job->suffix)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      throw ApiError(400, "\"suffix\" may hold letters, digits, '-' and '_' only", "suffix", "invalid_value");
  // The hyperparameters, at the top level (older clients) or under method.supervised (newer ones).
  ojson h = body.contains("hyperparameters") ? body["hyperparameters"] : ojson::object();
  if (body.contains("method") && body["method"].is_object()) {
    const ojson& m = body["method"];
    if (m.contains("type") && m["type"] != "supervised")
      throw ApiError(400, "only the \"supervised\" fine-tuning method is supported", "method.type", "invalid_value");
    if (m.contains("supervised") && m["supervised"].is_object() && m["supervised"].contains("hyperparameters"))
      h = m["supervised"]["hyperparameters"];
  }
  if (h.is_null()) h = ojson::object();
  if (!h.is_object()) throw ApiError(400, "\"hyperparameters\" must be an object", "hyperparameters", "invalid_type");
  if (auto v = hyper(h, "n_epochs", 1, 50, true)) job->n_epochs = static_cast<int32_t>(*v);
  if (auto v = hyper(h, "batch_size", 1, 256, true)) job->batch_size = static_cast<int32_t>(*v);
  if (auto v = hyper(h, "learning_rate_multiplier", 1e-4, 100, false)) job->lr_multiplier = *v;
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) throw ApiError(400, "\"seed\" must be an integer", "seed", "invalid_type");
    job->seed = body["seed"].get<uint64_t>();
  } else {
    job->seed = std::random_device{}() % 1000000;
  }
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto* f : {&job->training_file, &job->validation_file})
    if (!f->empty() && !files_.count(*f))
      throw ApiError(404, "No such File object: " + *f, f == &job->training_file ? "training_file" : "validation_file",
                     "not_found");
  job->id = make_id("ftjob-", ++next_id_);
  job->created_at = now();
  jobs_.push_back(job);
  queue_.push_back(job);
  FtEvent e;
  e.id = make_id("ftevent-", ++next_id_);
  e.created_at = job->created_at;
  e.message = "Created fine-tuning job: " + job->id;
  job->events.push_back(std::move(e));
  cv_.notify_all();
  return to_json(*job);
}

std::shared_ptr<FtJob> FineTuning::find(const std::string& id) const {
  for (const auto& j : jobs_)
    if (j->id == id) return j;
  throw ApiError(404, "No fine-tuning job with id " + id, "fine_tuning_job_id", "not_found");
}

ojson FineTuning::to_json(const FtJob& j) const {
  return {{"id", j.id},
          {"object", "fine_tuning.job"},
          {"created_at", j.created_at},
          {"error", j.error},
          {"fine_tuned_model", j.fine_tuned_model.empty() ? ojson(nullptr) : ojson(j.fine_tuned_model)},
          {"finished_at", j.finished_at ? ojson(j.finished_at) : ojson(nullptr)},
          {"hyperparameters",
           {{"n_epochs", j.n_epochs}, {"batch_size", j.batch_size}, {"learning_rate_multiplier", j.lr_multiplier}}},
          {"method",
           {{"type", "supervised"},
            {"supervised",
             {{"hyperparameters",
               {{"n_epochs", j.n_epochs}, {"batch_size", j.batch_size}, {"learning_rate_multiplier", j.lr_multiplier}}}}}}},
          {"model", j.model},
          {"organization_id", "edgellm"},
          {"result_files", ojson::array()},
          {"seed", j.seed},
          {"status", j.status},
          {"trained_tokens", j.status == "succeeded" ? ojson(j.trained_tokens) : ojson(nullptr)},
          {"training_file", j.training_file},
          {"validation_file", j.validation_file.empty() ? ojson(nullptr) : ojson(j.validation_file)},
          {"estimated_finish", nullptr},
          {"integrations", ojson::array()},
          {"suffix", j.suffix.empty() ? ojson(nullptr) : ojson(j.suffix)}};
}

ojson FineTuning::job_json(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  return to_json(*find(id));
}

ojson FineTuning::list_jobs(int64_t limit, const std::string& after) const {
  std::lock_guard<std::mutex> lk(mu_);
  ojson data = ojson::array();
  bool skipping = !after.empty(), more = false;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {  // newest first
    if (skipping) {
      skipping = (*it)->id != after;
      continue;
    }
    if (static_cast<int64_t>(data.size()) == limit) {
      more = true;
      break;
    }
    data.push_back(to_json(**it));
  }
  return {{"object", "list"}, {"data", data}, {"has_more", more}};
}

ojson FineTuning::events_json(const std::string& id, int64_t limit, const std::string& after) const {
  std::lock_guard<std::mutex> lk(mu_);
  const auto job = find(id);
  ojson data = ojson::array();
  bool skipping = !after.empty(), more = false;
  for (auto it = job->events.rbegin(); it != job->events.rend(); ++it) {  // newest first
    if (skipping) {
      skipping = it->id != after;
      continue;
    }
    if (static_cast<int64_t>(data.size()) == limit) {
      more = true;
      break;
    }
    data.push_back({{"id", it->id}, {"object", "fine_tuning.job.event"}, {"created_at", it->created_at},
                    {"level", it->level}, {"message", it->message}, {"data", it->data}, {"type", it->type}});
  }
  return {{"object", "list"}, {"data", data}, {"has_more", more}};
}

ojson FineTuning::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  const auto job = find(id);
  if (finished(job->status))
    throw ApiError(400, "Job " + id + " has already " + job->status + " and cannot be cancelled", "fine_tuning_job_id",
                   "invalid_request_error");
  job->cancel.store(true);
  for (auto it = queue_.begin(); it != queue_.end(); ++it)
    if (*it == job) {
      queue_.erase(it);
      break;
    }
  job->status = "cancelled";
  job->finished_at = now();
  FtEvent e;
  e.id = make_id("ftevent-", ++next_id_);
  e.created_at = job->finished_at;
  e.message = "Fine-tuning job cancelled";
  job->events.push_back(std::move(e));
  return to_json(*job);
}

void FineTuning::event(FtJob& job, const std::string& message, const std::string& level, ojson data) {
  std::lock_guard<std::mutex> lk(mu_);
  FtEvent e;
  e.id = make_id("ftevent-", ++next_id_);
  e.created_at = now();
  e.level = level;
  e.message = message;
  if (!data.is_null()) e.type = "metrics";
  e.data = std::move(data);
  // A long job's per-step metrics are thinned out so its history stays bounded.
  constexpr size_t kMaxEvents = 4096;
  if (job.events.size() >= kMaxEvents)
    for (auto it = job.events.begin() + 1; it != job.events.end(); ++it)
      if (it->type == "metrics") {
        job.events.erase(it);
        break;
      }
  job.events.push_back(std::move(e));
}

void FineTuning::worker() {
  lower_priority();
  for (;;) {
    std::shared_ptr<FtJob> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
      queue_.pop_front();
    }
    try {
      run(job);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!finished(job->status)) {
        job->status = "failed";
        job->finished_at = now();
        job->error = {{"code", "training_failed"}, {"message", e.what()}, {"param", nullptr}};
      }
    }
  }
}

void FineTuning::run(const std::shared_ptr<FtJob>& job) {
  auto fail = [&](const std::string& code, const std::string& message, const char* param) {
    event(*job, message, "error");
    std::lock_guard<std::mutex> lk(mu_);
    if (finished(job->status)) return;
    job->status = "failed";
    job->finished_at = now();
    job->error = {{"code", code}, {"message", message}, {"param", param ? ojson(param) : ojson(nullptr)}};
  };
  std::string train_text, train_name, val_text, val_name;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (job->cancel.load()) return;
    const FtFile& t = files_.at(job->training_file);
    train_text = t.content;
    train_name = t.filename;
    if (!job->validation_file.empty()) {
      val_text = files_.at(job->validation_file).content;
      val_name = files_.at(job->validation_file).filename;
    }
  }
  event(*job, "Validating training file: " + job->training_file);
  std::vector<train::Conversation> train_convs, val_convs;
  try {
    train_convs = train::parse_chat_jsonl(train_text, train_name);
  } catch (const Error& e) {
    return fail("invalid_training_file", e.what(), "training_file");
  }
  try {
    if (!val_text.empty()) val_convs = train::parse_chat_jsonl(val_text, val_name);
  } catch (const Error& e) {
    return fail("invalid_validation_file", e.what(), "validation_file");
  }
  std::shared_ptr<ModelLease> lease;
  try {
    lease = st_.pool->acquire(job->model);
  } catch (const ApiError& e) {
    return fail("model_unavailable", e.message, "model");
  }
  HostedModel& hosted = lease->model();
  const runtime::Engine& engine = *hosted.engine;
  const int32_t max_tokens = std::min<int32_t>(1024, engine.config().n_ctx_train);
  auto render = [&](const std::vector<train::Conversation>& convs, const std::string& name, const char* param,
                    std::vector<train::Example>& out) {
    int64_t skipped = 0;
    for (const auto& c : convs) {
      train::Example ex;
      try {
        ex = train::render_conversation(c, engine.formatter(), engine.tokenizer());
      } catch (const InvalidArgument& e) {
        fail(std::string("invalid_") + param, name + ":" + std::to_string(c.line) + ": " + e.what(), param);
        return false;
      }
      if (static_cast<int32_t>(ex.tokens.size()) > max_tokens) {
        ++skipped;
        continue;
      }
      out.push_back(std::move(ex));
    }
    if (skipped)
      event(*job, name + ": skipped " + std::to_string(skipped) + " conversation(s) longer than " +
                      std::to_string(max_tokens) + " tokens", "warn");
    if (out.empty() && !convs.empty()) {
      fail(std::string("invalid_") + param, name + ": no conversation fits in " + std::to_string(max_tokens) + " tokens",
           param);
      return false;
    }
    return true;
  };
  std::vector<train::Example> train_set, val_set;
  if (!render(train_convs, train_name, "training_file", train_set)) return;
  if (!render(val_convs, val_name, "validation_file", val_set)) return;
  int64_t tokens_per_epoch = 0;
  for (const auto& ex : train_set) tokens_per_epoch += static_cast<int64_t>(ex.tokens.size());
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (job->cancel.load()) return;
    job->status = "running";
  }
  event(*job, "Fine-tuning job started: " + std::to_string(train_set.size()) + " conversations, " +
                  std::to_string(tokens_per_epoch) + " tokens per epoch");

  train::LoraTrainConfig cfg;  // rank 8, alpha 16, every projection
  cfg.seed = job->seed;
  train::LoraParams params(engine.config(), cfg);
  ops::ThreadPool pool(static_cast<int>(engine.pool().size()));  // created here: inherits the low priority
  train::Trainer trainer(engine.model(), params, pool);
  train::FinetuneOptions opt;
  opt.epochs = job->n_epochs;
  opt.batch = job->batch_size;
  opt.opt.lr = static_cast<float>(kBaseLr * job->lr_multiplier);
  opt.seed = job->seed;
  // Serving requests come first: between optimizer steps the job waits while any model has work.
  auto busy = [&] {
    const auto s = st_.pool->stats();
    return s.active + s.queued > 0;
  };
  auto on_progress = [&](const train::Progress& p) {
    event(*job, "Step " + std::to_string(p.step) + "/" + std::to_string(p.steps) + ": training loss=" +
                    std::to_string(p.loss), "info",
          {{"step", p.step}, {"total_steps", p.steps}, {"epoch", p.epoch}, {"train_loss", p.loss}});
    if (!busy()) return;
    event(*job, "Paused while the server answers requests");
    while (busy() && !job->cancel.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!job->cancel.load()) event(*job, "Resumed");
  };
  auto on_epoch = [&](const train::EpochReport& r) {
    ojson d = {{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"seconds", r.seconds}};
    std::string msg = "Epoch " + std::to_string(r.epoch) + ": training loss=" + std::to_string(r.train_loss);
    if (r.eval_loss >= 0) {
      d["valid_loss"] = r.eval_loss;
      msg += ", validation loss=" + std::to_string(r.eval_loss);
    }
    event(*job, msg, "info", d);
  };
  const auto res = train::finetune(trainer, params, train_set, val_set, opt, on_progress, on_epoch, &job->cancel);
  if (res.end == train::FinetuneResult::End::Stopped) return;  // cancel() set the status
  if (res.end == train::FinetuneResult::End::NonFinite) return fail("training_failed", res.message, nullptr);

  const std::string name =
      "ft:" + job->model + ":" + (job->suffix.empty() ? std::string("edgellm") : job->suffix) + ":" + job->id;
  std::filesystem::create_directories(dir_);
  const std::string path = (std::filesystem::path(dir_) / (job->id + ".gguf")).string();
  params.save_adapter(path, name);
  auto adapter = model::LoraAdapter::load(path, engine.model());
  std::lock_guard<std::mutex> lk(mu_);
  if (finished(job->status)) return;  // cancelled while the adapter was being written
  {
    // Off by default (scale 0): a request names it in its "lora" list.
    std::unique_lock<std::shared_mutex> wl(hosted.lora_mu);
    hosted.lora.entries.push_back({std::move(adapter), 0.0f});
  }
  job->fine_tuned_model = name;
  job->adapter_path = path;
  job->trained_tokens = tokens_per_epoch * job->n_epochs;
  job->status = "succeeded";
  job->finished_at = now();
  FtEvent e;
  e.id = make_id("ftevent-", ++next_id_);
  e.created_at = job->finished_at;
  e.message = "The job has successfully completed; adapter " + name + " is registered";
  job->events.push_back(std::move(e));
}

}  // namespace edgellm::server
