#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace edgellm::server {
namespace {
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

void Histogram::observe(double v) {
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (v <= kBounds[i]) ++buckets_[i];
  ++count_;
  sum_ += v;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  for (size_t i = 0; i < kBounds.size(); ++i)
    out += name + "_bucket{" + labels + "le=\"" + num(kBounds[i]) + "\"} " + std::to_string(buckets_[i]) + "\n";
  out += name + "_bucket{" + labels + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  std::string l = labels;
  if (!l.empty() && l.back() == ',') l.pop_back();
  const std::string braces = l.empty() ? "" : "{" + l + "}";
  out += name + "_sum" + braces + " " + num(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

void Metrics::request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++requests_[{route, status}];
}

void Metrics::latency(const std::string& route, double seconds) {
  std::lock_guard<std::mutex> lk(mu_);
  latency_[route].observe(seconds);
}

void Metrics::generation(int32_t prompt_tokens, int32_t generated_tokens, double ttft, double queue_seconds,
                         double decode_seconds) {
  std::lock_guard<std::mutex> lk(mu_);
  prompt_tokens_ += static_cast<uint64_t>(std::max(0, prompt_tokens));
  generated_tokens_ += static_cast<uint64_t>(std::max(0, generated_tokens));
  ++generations_;
  if (ttft > 0) ttft_.observe(ttft);
  queue_.observe(queue_seconds);
  (void)decode_seconds;
}

void Metrics::rejected() {
  std::lock_guard<std::mutex> lk(mu_);
  ++rejected_;
}

std::string Metrics::render(const runtime::SchedulerStats& st) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string o;
  o += "# HELP edgellm_requests_total HTTP requests by route and status code.\n";
  o += "# TYPE edgellm_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    o += "edgellm_requests_total{route=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
         std::to_string(v) + "\n";
  o += "# HELP edgellm_request_duration_seconds Time from request to the last byte of the answer.\n";
  o += "# TYPE edgellm_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) h.render(o, "edgellm_request_duration_seconds", "route=\"" + route + "\",");
  o += "# HELP edgellm_time_to_first_token_seconds Time from request to the first generated token.\n";
  o += "# TYPE edgellm_time_to_first_token_seconds histogram\n";
  ttft_.render(o, "edgellm_time_to_first_token_seconds", "");
  o += "# HELP edgellm_queue_wait_seconds Time a request waited for a slot.\n";
  o += "# TYPE edgellm_queue_wait_seconds histogram\n";
  queue_.render(o, "edgellm_queue_wait_seconds", "");
  o += "# HELP edgellm_prompt_tokens_total Prompt tokens received.\n# TYPE edgellm_prompt_tokens_total counter\n";
  o += "edgellm_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  o += "# HELP edgellm_generated_tokens_total Tokens generated.\n# TYPE edgellm_generated_tokens_total counter\n";
  o += "edgellm_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  o += "# HELP edgellm_generations_total Generation and embedding jobs finished.\n";
  o += "# TYPE edgellm_generations_total counter\nedgellm_generations_total " + std::to_string(generations_) + "\n";
  o += "# HELP edgellm_rejected_total Requests refused because the queue was full.\n";
  o += "# TYPE edgellm_rejected_total counter\nedgellm_rejected_total " + std::to_string(rejected_) + "\n";
  o += "# HELP edgellm_queue_depth Requests waiting for a slot.\n# TYPE edgellm_queue_depth gauge\n";
  o += "edgellm_queue_depth " + std::to_string(st.queued) + "\n";
  o += "# HELP edgellm_active_slots Slots serving a request.\n# TYPE edgellm_active_slots gauge\n";
  o += "edgellm_active_slots " + std::to_string(st.active) + "\n";
  o += "# HELP edgellm_slots Slots (parallel sequences).\n# TYPE edgellm_slots gauge\n";
  o += "edgellm_slots " + std::to_string(st.n_slots) + "\n";
  o += "# HELP edgellm_batch_steps_total Forward passes run by the scheduler.\n";
  o += "# TYPE edgellm_batch_steps_total counter\nedgellm_batch_steps_total " + std::to_string(st.steps) + "\n";
  o += "# HELP edgellm_batch_tokens_total Tokens run across all forward passes.\n";
  o += "# TYPE edgellm_batch_tokens_total counter\nedgellm_batch_tokens_total " + std::to_string(st.batched_tokens) + "\n";
  o += "# TYPE edgellm_prompt_cache_hits_total counter\nedgellm_prompt_cache_hits_total " +
       std::to_string(st.prompt_cache_hits) + "\n";
  return o;
}

}  // namespace edgellm::server
