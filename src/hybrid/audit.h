#pragma once
// Append-only JSONL audit log, one line per request: time, ids, route record, token counts and
// PII kinds with counts. Never raw PII values or prompt text: only a salted SHA-256 of the prompt.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "hybrid/policy.h"
#include "hybrid/router.h"

namespace edgellm::hybrid {

std::string sha256_hex(std::string_view data);

struct AuditEntry {
  std::string request_id;
  std::string app;       // caller-supplied application name (may be empty)
  std::string profile;   // policy name
  RouteRecord route;
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  int64_t cloud_prompt_tokens = -1;
  int64_t cloud_completion_tokens = -1;
  std::array<int, kPiiKindCount> pii_counts{};
  std::string prompt_sha256;  // from AuditLog::prompt_hash
  std::string status = "ok";  // ok | error
};

class AuditLog {
 public:
  // Opens (creating if needed) cfg.path for appending. Throws Error if it cannot.
  explicit AuditLog(const AuditConfig& cfg);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // One JSON line; the whole line goes out in one write() on an O_APPEND descriptor, so lines
  // from several processes sharing the file do not interleave.
  void write(const AuditEntry& e);
  void sync();
  std::string prompt_hash(std::string_view prompt) const;
  static nlohmann::json to_json(const AuditEntry& e);

 private:
  AuditConfig cfg_;
  int fd_ = -1;
  std::mutex mu_;
  int64_t last_sync_ms_ = 0;
  bool dirty_ = false;
};

}  // namespace edgellm::hybrid
