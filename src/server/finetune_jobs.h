#pragma once
// Fine-tuning jobs of `edgellm serve` in the shape of OpenAI's /v1/files and /v1/fine_tuning/jobs:
// uploaded JSONL files kept in memory, jobs run one at a time on a background thread at the lowest
// CPU priority that pauses between optimizer steps while the server has requests to serve. A job that
// succeeds writes its adapter and registers it with its model (scale 0: off by default, chosen by a
// request's "lora" list by id or by its name, the job's fine_tuned_model).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgellm::server {

struct ServerState;

struct FtFile {
  std::string id, filename, purpose, content;
  int64_t created_at = 0;
};

struct FtEvent {
  std::string id, level = "info", message, type = "message";
  int64_t created_at = 0;
  nlohmann::ordered_json data;  // null, or the step's metrics
};

struct FtJob {
  std::string id, model, training_file, validation_file, suffix, fine_tuned_model, adapter_path;
  std::string status = "validating_files";  // queued, running, succeeded, failed, cancelled
  int64_t created_at = 0, finished_at = 0, trained_tokens = 0;
  int32_t n_epochs = 3, batch_size = 1;
  double lr_multiplier = 1.0;
  uint64_t seed = 0;
  nlohmann::ordered_json error;  // null, or {code, message, param}
  std::vector<FtEvent> events;   // oldest first
  std::atomic<bool> cancel{false};
};

class FineTuning {
 public:
  // Adapters go to `dir` (created when the first job succeeds). With remove_dir the folder is the
  // server's own scratch space and goes with it (its adapters are registered only in this process).
  FineTuning(ServerState& st, std::string dir, bool remove_dir);
  ~FineTuning();  // cancels the running job, joins the worker, removes the folder if asked
  FineTuning(const FineTuning&) = delete;
  FineTuning& operator=(const FineTuning&) = delete;

  nlohmann::ordered_json add_file(std::string filename, std::string purpose, std::string content);
  nlohmann::ordered_json file_json(const std::string& id) const;  // ApiError 404 if unknown
  nlohmann::ordered_json list_files() const;
  // Validates the request body (ApiError 400/404) and queues the job.
  nlohmann::ordered_json create(const nlohmann::ordered_json& body);
  nlohmann::ordered_json job_json(const std::string& id) const;
  nlohmann::ordered_json list_jobs(int64_t limit, const std::string& after) const;
  nlohmann::ordered_json events_json(const std::string& id, int64_t limit, const std::string& after) const;
  // ApiError 400 when the job has already finished (as OpenAI).
  nlohmann::ordered_json cancel(const std::string& id);

  // Base learning rate; a job's is this times its learning_rate_multiplier.
  static constexpr double kBaseLr = 1e-3;

 private:
  void worker();
  void run(const std::shared_ptr<FtJob>& job);
  void event(FtJob& job, const std::string& message, const std::string& level = "info",
             nlohmann::ordered_json data = nullptr);
  void finish(FtJob& job, const std::string& status);
  std::shared_ptr<FtJob> find(const std::string& id) const;  // ApiError 404
  nlohmann::ordered_json to_json(const FtJob& job) const;    // under mu_

  ServerState& st_;
  std::string dir_;
  bool remove_dir_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, FtFile> files_;
  std::vector<std::shared_ptr<FtJob>> jobs_;  // creation order
  std::deque<std::shared_ptr<FtJob>> queue_;
  uint64_t next_id_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace edgellm::server
