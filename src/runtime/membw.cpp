#include "runtime/membw.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace edgellm::runtime {
namespace {

// Four independent accumulators keep the loads in flight; the sum is returned so the
// compiler cannot drop the reads.
uint64_t read_slice(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a += p[i] ^ p[i + 4];
    b += p[i + 1] ^ p[i + 5];
    c += p[i + 2] ^ p[i + 6];
    d += p[i + 3] ^ p[i + 7];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

}  // namespace

ReadBandwidthProbe::ReadBandwidthProbe(ops::ThreadPool& pool, size_t bytes)
    : pool_(pool), n_(bytes / sizeof(uint64_t)),
      buf_(reinterpret_cast<uint64_t*>(arena_.allocate(n_ * sizeof(uint64_t)))) {
  // Each thread touches its own slice first so pages are resident before timing.
  pool_.parallel_for(static_cast<int64_t>(n_), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf_[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
}

Bandwidth ReadBandwidthProbe::sample(int reps) {
  std::vector<uint64_t> sink(pool_.size());
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool_.parallel_for(static_cast<int64_t>(n_), [&](int64_t b, int64_t e, int t) {
      sink[t] += read_slice(buf_ + b, static_cast<size_t>(e - b));
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n_ * sizeof(uint64_t)) / s);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep + v;
  (void)keep;
  return {best, n_ * sizeof(uint64_t), pool_.size()};
}

Bandwidth measure_read_bandwidth(ops::ThreadPool& pool, size_t bytes, int reps) {
  return ReadBandwidthProbe(pool, bytes).sample(reps);
}

}  // namespace edgellm::runtime
