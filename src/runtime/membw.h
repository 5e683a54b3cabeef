#pragma once
// Measures the machine's memory read bandwidth, the ceiling on decode speed: every weight is
// read once per generated token, so tokens/s can never exceed bandwidth / bytes per token.
#include <cstddef>

#include "ops/thread_pool.h"

namespace edgellm::runtime {

struct Bandwidth {
  double bytes_per_second = 0;  // best of the repetitions
  size_t buffer_bytes = 0;
  int threads = 0;
};

// Streams a buffer of `bytes` (much larger than the last-level cache) with every thread of the
// pool reading its own slice, `reps` times; returns the best rate.
Bandwidth measure_read_bandwidth(ops::ThreadPool& pool, size_t bytes = size_t(1) << 30, int reps = 5);

}  // namespace edgellm::runtime
