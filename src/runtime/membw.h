#pragma once
// Measures the machine's memory read bandwidth, the ceiling on decode speed: every weight is
// read once per generated token, so tokens/s can never exceed bandwidth / bytes per token.
#include <cstddef>
#include <cstdint>
#include "model/page_arena.h"
#include "ops/thread_pool.h"

namespace edgellm::runtime {

struct Bandwidth {
  double bytes_per_second = 0;  // best of the repetitions
  size_t buffer_bytes = 0;
  int threads = 0;
};

// A buffer of `bytes` (much larger than the last-level cache), faulted in once, that can be
// streamed again and again: on a shared machine the bandwidth available changes from second to
// second, so `edgellm bench` samples it right next to each decode run. The buffer sits in huge
// pages where the system allows, as the repacked weights do (model/page_arena.h): the ceiling is
// the best read rate, and 4 KiB pages alone cost decode about a sixth of it on Zen 4.
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(ops::ThreadPool& pool, size_t bytes = size_t(1) << 30);
  // Every thread of the pool reads its own slice, `reps` times; the best rate.
  Bandwidth sample(int reps);

 private:
  ops::ThreadPool& pool_;
  size_t n_;  // uint64_t words
  model::PageArena arena_;
  uint64_t* buf_;
};

// One-shot: a probe's best of `reps` passes.
Bandwidth measure_read_bandwidth(ops::ThreadPool& pool, size_t bytes = size_t(1) << 30, int reps = 5);

}  // namespace edgellm::runtime
