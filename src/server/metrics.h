#pragma once
// Prometheus text exposition of the server's counters, histograms and gauges.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "runtime/scheduler.h"

namespace edgellm::server {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1, 2.5, 5, 10, 30, 60, 120};
  void observe(double v);
  // Lines "<name>_bucket{<labels>le=..} n", _sum, _count. labels: "" or `route="x",`.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<uint64_t, kBounds.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  void request(const std::string& route, int status);
  void latency(const std::string& route, double seconds);
  void generation(int32_t prompt_tokens, int32_t generated_tokens, double ttft, double queue_seconds,
                  double decode_seconds);
  void rejected();  // queue full
  std::string render(const runtime::SchedulerStats& st) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram ttft_, queue_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, rejected_ = 0, generations_ = 0;
};

}  // namespace edgellm::server
