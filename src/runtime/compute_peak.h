#pragma once
// Measures the machine's int8 multiply-add peak, the ceiling on prefill speed: a prompt's
// matmuls are int8 dot products (u8 weights x s8 activations), so prefill can never do more
// multiply-adds per second than a loop that does nothing else. `edgellm bench` prints prefill as
// a fraction of it, as it prints decode as a fraction of the memory bandwidth (membw.h).
#include <cstdint>
#include <string>
#include <vector>

#include "ops/thread_pool.h"

namespace edgellm::runtime {

// One int8 multiply-add loop. The x86 paths are compiled with target attributes and chosen at
// run time from what the CPU reports; kPortable is plain C++ that any CPU runs.
enum class Int8Loop {
  kPortable,    // scalar C++ (the compiler may vectorise it)
  kAvx2,        // vpmaddubsw + vpmaddwd + vpaddd on 256-bit vectors (what the AVX2 kernels do)
  kAvx2Vnni,    // vpdpbusd on 256-bit vectors (AVX-VNNI)
  kAvx512,      // vpmaddubsw + vpmaddwd + vpaddd on 512-bit vectors (AVX-512 BW)
  kAvx512Vnni,  // vpdpbusd on 512-bit vectors (AVX-512 VNNI)
};

const char* int8_loop_name(Int8Loop loop);
bool int8_loop_supported(Int8Loop loop);

struct Int8LoopResult {
  int64_t lane_sum = 0;  // sum of every int32 accumulator lane at the end
  uint64_t macs = 0;     // u8 x s8 products the loop counts as done
};

// Runs `iters` iterations of `loop` on one thread. Every vector holds the 4-byte pattern
// a4 (unsigned) / b4 (signed) in each 32-bit lane, and every product is accumulated exactly
// (no saturation as long as a4[0]*b4[0] + a4[1]*b4[1] and a4[2]*b4[2] + a4[3]*b4[3] fit in
// int16, and lanes stay in int32), so lane_sum = macs / 4 * dot(a4, b4): with a4 = b4 = 1 it
// equals the number of multiply-adds counted. That is how the test checks the count.
// Throws InvalidArgument if the CPU cannot run `loop`.
Int8LoopResult run_int8_loop(Int8Loop loop, const uint8_t a4[4], const int8_t b4[4], int64_t iters);

struct ComputePeak {
  Int8Loop loop = Int8Loop::kPortable;
  double macs_per_second = 0;  // best of the repetitions, all threads together
  int threads = 0;
};

// The maddubs/madd loop matching an ISA name of ops::active_isa() ("avx3" -> kAvx512, "avx2" ->
// kAvx2, else kPortable), and its VNNI counterpart when the CPU has one (else none).
Int8Loop int8_loop_for_isa(const std::string& isa);
bool vnni_loop_for_isa(const std::string& isa, Int8Loop& out);

// Every thread of the pool runs `loop` at once for about `seconds`; the best of `reps` passes.
ComputePeak measure_int8_peak(ops::ThreadPool& pool, Int8Loop loop, int reps = 3, double seconds = 0.1);

}  // namespace edgellm::runtime
