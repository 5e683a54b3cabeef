#include "runtime/compute_peak.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define EDGELLM_PEAK_X86 1
#endif

namespace edgellm::runtime {
namespace {

// Independent accumulators: 6 (AVX2, whose 16 registers also hold 6 b vectors, a and ones) or 8
// for maddubs, whose only loop-carried dependency is a 1-cycle add; 12 for VNNI, whose
// accumulate is itself the dependency chain (latency ~5 on two ports).

// The loops keep their operands opaque with empty asm statements: without them the compiler
// would hoist the (loop-invariant) products out of the loop or merge identical accumulators,
// and the loop would no longer do the multiply-adds it counts. They emit no instruction.
Int8LoopResult loop_portable(const uint8_t a4[4], const int8_t b4[4], int64_t iters) {
  constexpr int kLanes = 16;  // one 64-byte "vector" of 16 int32 lanes
  uint8_t a[4 * kLanes];
  int8_t b[4 * kLanes];
  for (int i = 0; i < 4 * kLanes; ++i) a[i] = a4[i % 4], b[i] = b4[i % 4];
  int32_t acc[kLanes] = {};
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : : "r"(a), "r"(b) : "memory");  // reload a and b every iteration
    for (int l = 0; l < kLanes; ++l) {
      int32_t s = 0;
      for (int j = 0; j < 4; ++j) s += int32_t(a[4 * l + j]) * int32_t(b[4 * l + j]);
      acc[l] = static_cast<int32_t>(static_cast<uint32_t>(acc[l]) + static_cast<uint32_t>(s));
    }
  }
  Int8LoopResult r;
  for (int32_t v : acc) r.lane_sum += v;
  r.macs = static_cast<uint64_t>(iters) * 4 * kLanes;
  return r;
}

#ifdef EDGELLM_PEAK_X86
uint32_t pack4(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <typename V>
int64_t sum_lanes(const V& v) {
  int32_t lanes[sizeof(V) / 4];
  std::memcpy(lanes, &v, sizeof(V));
  int64_t s = 0;
  for (int32_t x : lanes) s += x;
  return s;
}

// The accumulators are named variables, not arrays (GCC spills arrays of vectors to the stack
// inside the loop). Each step reads and writes its accumulator, so nothing can be hoisted out
// of the loop; VNNI's accumulators also start opaque so the compiler cannot merge them (all
// would be the same expression). They are added together (int32 lanes) at the end.
#define EDGELLM_X8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define EDGELLM_X12(X) EDGELLM_X8(X) X(8) X(9) X(10) X(11)

// One maddubs step in asm: GCC's register allocator adds a vector move per accumulator and
// iteration to the intrinsics version, which would make the loop front-end bound.
#define MADD_STEP(acc, a, b, ones)                                                           \
  do {                                                                                       \
    decltype(acc) t_;                                                                        \
    asm("vpmaddubsw %[vb], %[va], %[t]\n\tvpmaddwd %[one], %[t], %[t]\n\tvpaddd %[t], %[x], %[x]" \
        : [x] "+v"(acc), [t] "=&v"(t_)                                                        \
        : [va] "v"(a), [vb] "v"(b), [one] "v"(ones));                                         \
  } while (0)

__attribute__((target("avx2"))) Int8LoopResult loop_avx2(uint32_t a4, uint32_t b4, int64_t iters) {
  const __m256i va = _mm256_set1_epi32(static_cast<int>(a4)), vb = _mm256_set1_epi32(static_cast<int>(b4));
  const __m256i ones = _mm256_set1_epi16(1);
#define INIT(k) __m256i acc##k = _mm256_setzero_si256();
  EDGELLM_X8(INIT)
#undef INIT
  for (int64_t it = 0; it < iters; ++it) {
#define STEP(k) MADD_STEP(acc##k, va, vb, ones);
    EDGELLM_X8(STEP)
#undef STEP
  }
  __m256i total = _mm256_setzero_si256();
#define SUM(k) total = _mm256_add_epi32(total, acc##k);
  EDGELLM_X8(SUM)
  return {sum_lanes(total), static_cast<uint64_t>(iters) * 8 * 32};
}

__attribute__((target("avx2,avxvnni"))) Int8LoopResult loop_avx2_vnni(uint32_t a4, uint32_t b4, int64_t iters) {
  __m256i va = _mm256_set1_epi32(static_cast<int>(a4)), vb = _mm256_set1_epi32(static_cast<int>(b4));
#define INIT(k)                          \
  __m256i acc##k = _mm256_setzero_si256(); \
  asm volatile("" : "+x"(acc##k));
  EDGELLM_X12(INIT)
#undef INIT
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(va));
#define STEP(k) acc##k = _mm256_dpbusd_avx_epi32(acc##k, va, vb);
    EDGELLM_X12(STEP)
#undef STEP
  }
  __m256i total = _mm256_setzero_si256();
  EDGELLM_X12(SUM)
  return {sum_lanes(total), static_cast<uint64_t>(iters) * 12 * 32};
}
#undef SUM

__attribute__((target("avx512f,avx512bw"))) Int8LoopResult loop_avx512(uint32_t a4, uint32_t b4, int64_t iters) {
  const __m512i va = _mm512_set1_epi32(static_cast<int>(a4)), vb = _mm512_set1_epi32(static_cast<int>(b4));
  const __m512i ones = _mm512_set1_epi16(1);
#define INIT(k) __m512i acc##k = _mm512_setzero_si512();
  EDGELLM_X8(INIT)
#undef INIT
  for (int64_t it = 0; it < iters; ++it) {
#define STEP(k) MADD_STEP(acc##k, va, vb, ones);
    EDGELLM_X8(STEP)
#undef STEP
  }
  __m512i total = _mm512_setzero_si512();
#define SUM(k) total = _mm512_add_epi32(total, acc##k);
  EDGELLM_X8(SUM)
  return {sum_lanes(total), static_cast<uint64_t>(iters) * 8 * 64};
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) Int8LoopResult loop_avx512_vnni(uint32_t a4, uint32_t b4,
                                                                                        int64_t iters) {
  __m512i va = _mm512_set1_epi32(static_cast<int>(a4)), vb = _mm512_set1_epi32(static_cast<int>(b4));
#define INIT(k)                          \
  __m512i acc##k = _mm512_setzero_si512(); \
  asm volatile("" : "+v"(acc##k));
  EDGELLM_X12(INIT)
#undef INIT
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+v"(va));
#define STEP(k) acc##k = _mm512_dpbusd_epi32(acc##k, va, vb);
    EDGELLM_X12(STEP)
#undef STEP
  }
  __m512i total = _mm512_setzero_si512();
  EDGELLM_X12(SUM)
#undef SUM
  return {sum_lanes(total), static_cast<uint64_t>(iters) * 12 * 64};
}
#undef MADD_STEP
#undef EDGELLM_X8
#undef EDGELLM_X12
#endif

}  // namespace

const char* int8_loop_name(Int8Loop loop) {
  switch (loop) {
    case Int8Loop::kPortable: return "portable";
    case Int8Loop::kAvx2: return "avx2 maddubs";
    case Int8Loop::kAvx2Vnni: return "avx-vnni dpbusd";
    case Int8Loop::kAvx512: return "avx512 maddubs";
    case Int8Loop::kAvx512Vnni: return "avx512-vnni dpbusd";
  }
  return "?";
}

#ifdef EDGELLM_PEAK_X86
// AVX-VNNI is CPUID leaf 7 sub-leaf 1, EAX bit 4. Read directly: clang 14's
// __builtin_cpu_supports does not know "avxvnni" (the sanitizer and fuzz builds use clang).
static bool cpu_has_avx_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  return (eax >> 4) & 1u;
}
#endif

bool int8_loop_supported(Int8Loop loop) {
#ifdef EDGELLM_PEAK_X86
  __builtin_cpu_init();
  switch (loop) {
    case Int8Loop::kPortable: return true;
    case Int8Loop::kAvx2: return __builtin_cpu_supports("avx2");
    case Int8Loop::kAvx2Vnni: return __builtin_cpu_supports("avx2") && cpu_has_avx_vnni();
    case Int8Loop::kAvx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case Int8Loop::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return loop == Int8Loop::kPortable;
#endif
}

Int8LoopResult run_int8_loop(Int8Loop loop, const uint8_t a4[4], const int8_t b4[4], int64_t iters) {
  if (!int8_loop_supported(loop))
    throw InvalidArgument(std::string("this CPU cannot run the ") + int8_loop_name(loop) + " loop");
  iters = std::max<int64_t>(iters, 0);
#ifdef EDGELLM_PEAK_X86
  const uint32_t a = pack4(a4), b = pack4(reinterpret_cast<const uint8_t*>(b4));
  switch (loop) {
    case Int8Loop::kAvx2: return loop_avx2(a, b, iters);
    case Int8Loop::kAvx2Vnni: return loop_avx2_vnni(a, b, iters);
    case Int8Loop::kAvx512: return loop_avx512(a, b, iters);
    case Int8Loop::kAvx512Vnni: return loop_avx512_vnni(a, b, iters);
    case Int8Loop::kPortable: break;
  }
#endif
  return loop_portable(a4, b4, iters);
}

Int8Loop int8_loop_for_isa(const std::string& isa) {
  if (isa.rfind("avx3", 0) == 0 && int8_loop_supported(Int8Loop::kAvx512)) return Int8Loop::kAvx512;
  if ((isa == "avx2" || isa.rfind("avx3", 0) == 0) && int8_loop_supported(Int8Loop::kAvx2)) return Int8Loop::kAvx2;
  return Int8Loop::kPortable;
}

bool vnni_loop_for_isa(const std::string& isa, Int8Loop& out) {
  const Int8Loop base = int8_loop_for_isa(isa);
  const Int8Loop vnni = base == Int8Loop::kAvx512 ? Int8Loop::kAvx512Vnni
                        : base == Int8Loop::kAvx2 ? Int8Loop::kAvx2Vnni
                                                  : Int8Loop::kPortable;
  if (vnni == Int8Loop::kPortable || !int8_loop_supported(vnni)) return false;
  out = vnni;
  return true;
}

ComputePeak measure_int8_peak(ops::ThreadPool& pool, Int8Loop loop, int reps, double seconds) {
  // Small operands so no product saturates; the values do not change the speed.
  const uint8_t a4[4] = {1, 2, 3, 4};
  const int8_t b4[4] = {-1, 2, -3, 4};
  using clock = std::chrono::steady_clock;
  // Calibrate the iteration count on one thread so each pass lasts about `seconds`.
  int64_t iters = 1 << 12;
  for (;;) {
    const auto t0 = clock::now();
    run_int8_loop(loop, a4, b4, iters);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    if (s > 0.01 || iters >= (int64_t(1) << 34)) {
      iters = std::max<int64_t>(1, static_cast<int64_t>(iters * seconds / std::max(s, 1e-9)));
      break;
    }
    iters *= 4;
  }
  std::vector<uint64_t> macs(pool.size());
  std::vector<int64_t> sink(pool.size());
  ComputePeak best{loop, 0, pool.size()};
  for (int r = 0; r < std::max(1, reps); ++r) {
    const auto t0 = clock::now();
    pool.run([&](int t) {
      const Int8LoopResult res = run_int8_loop(loop, a4, b4, iters);
      macs[t] = res.macs;
      sink[t] = res.lane_sum;
    });
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    uint64_t total = 0;
    for (uint64_t m : macs) total += m;
    best.macs_per_second = std::max(best.macs_per_second, static_cast<double>(total) / s);
  }
  return best;
}

}  // namespace edgellm::runtime
