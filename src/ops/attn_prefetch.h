#pragma once
// Software prefetch of the KV rows attention reads next (kernels_attention-inl.h WidenRows,
// kernels_attn_q8-inl.h Q8Scores16, kernels_attn_q8v-inl.h GroupValuesQ8Vnni).
//
// Why: one KV head's rows are one ascending stream (model/kv_cache.h stores them head-major),
// but the hardware prefetchers restart at every 4 KiB page and the attention kernels issue their
// loads in bursts between stretches of arithmetic, so the loads waited on memory: 28 layers of a
// 16K-position q8_0 cache, one thread (bench_ops BM_AttendLayers, Zen 4), 55 -> 43 ms with rows
// prefetched 32 rows (4.3 KiB) ahead; 96 rows ahead gained less. With the VNNI value pass
// (kernels_attn_q8v-inl.h) 2 KiB ahead beat 4 KiB: 29.3-30.6 vs 31.5-43.5 ms (4 rounds
// alternated, load 12-15; 1 KiB 30-31, 8 and 16 KiB slower; f32 / f16 unchanged).
#include <cstddef>
#include <cstdint>

namespace edgellm::ops {

inline constexpr size_t kAttnPrefetchBytes = 2048;

// Rows of stride bytes that make up about kAttnPrefetchBytes (at least 1).
inline size_t AttnPrefetchRows(size_t stride) {
  return stride >= kAttnPrefetchBytes ? 1 : (kAttnPrefetchBytes + stride - 1) / stride;
}

// Prefetches the cache lines of bytes [p, p + bytes) into L1 (a hint: never faults, so rows past
// the end of the cache are harmless).
inline void PrefetchRow(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
  __builtin_prefetch(p + bytes - 1);
}

}  // namespace edgellm::ops
