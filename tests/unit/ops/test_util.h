#pragma once
// Shared helpers for the ops tests: seeded random data, misaligned buffers, ISA loops.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ops/ops.h"

namespace edgellm::ops::testing {

// Every weight type the kernels compute with, for tests parameterised over all of them.
inline constexpr io::TensorType kAllWeightTypes[] = {
    io::TensorType::F32,  io::TensorType::F16,  io::TensorType::BF16, io::TensorType::Q8_0,
    io::TensorType::Q4_0, io::TensorType::Q4_1, io::TensorType::Q5_0, io::TensorType::Q5_1,
    io::TensorType::Q4_K, io::TensorType::Q5_K, io::TensorType::Q6_K};

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A byte buffer whose payload starts `offset` bytes past a 64-byte boundary, so kernels
// are exercised on misaligned pointers (GGUF tensors are only 32-byte aligned, and
// activations can be any float* the caller has).
class Misaligned {
 public:
  Misaligned(size_t bytes, size_t offset) : buf_(bytes + 128), offset_(offset) {
    const auto base = reinterpret_cast<uintptr_t>(buf_.data());
    start_ = ((base + 63) & ~uintptr_t{63}) - base + offset_;
  }
  uint8_t* data() { return buf_.data() + start_; }
  float* floats() { return reinterpret_cast<float*>(data()); }

 private:
  std::vector<uint8_t> buf_;
  size_t offset_;
  size_t start_;
};

// Restores the ISA in use when a test that forces ISAs ends.
class IsaGuard {
 public:
  IsaGuard() : saved_(active_isa()) {}
  ~IsaGuard() { force_isa(saved_); }

 private:
  std::string saved_;
};

// Runs f(isa) once with each instruction set compiled in and usable here forced, then
// restores the one in use.
template <typename F>
void for_each_isa(F f) {
  IsaGuard guard;
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa)) << isa;
    f(isa);
  }
}

}  // namespace edgellm::ops::testing
