#pragma once
// Which kernel attend_group_kv (ops.h) runs, for tests and benchmarks that must know whether
// the query was quantized.
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops {

// True when attend_group_kv over keys of k_type quantizes each query head to two int8 parts per
// block of 32 (q ~ d (q1 + q2 / 256), d = max|x| / 127; kernels_attn_q8-inl.h QueryQ8) and takes
// integer dot products with the keys: Q8_0 keys on the AVX3 target ("avx3") of a CPU with VNNI
// (use_vnni()), outside exact mode. Otherwise the keys are widened to fp32, the query used as given.
bool attend_group_int8_query(io::TensorType k_type);

// True when attend_group_kv over values of v_type quantizes the softmax weights times the rows'
// block scales to u8, one step per head and chunk of kQ8ValueChunk positions (step = the chunk's
// largest weight / 255; kernels_attn_q8v-inl.h) and takes integer dot products with the values:
// Q8_0 values under the same conditions as attend_group_int8_query. After the call `scores`
// holds the weights the values were taken with (unnormalised exp, or probabilities with a soft
// cap), which tests use to recompute the kernel's result.
bool attend_group_int8_weights(io::TensorType v_type);
inline constexpr int64_t kQ8ValueChunk = 32;

}  // namespace edgellm::ops
