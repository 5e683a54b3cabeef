#pragma once
// Which kernel attend_group_kv (ops.h) runs, for tests and benchmarks that must know whether
// the query was quantized.
#include "io/tensor_type.h"

namespace edgellm::ops {

// True when attend_group_kv over keys of k_type quantizes each query head to q8_0 (blocks of
// 32, scale max|x| / 127, round to nearest even) and takes integer dot products with the keys:
// Q8_0 keys on the AVX3 target ("avx3") of a CPU with VNNI (use_vnni()), outside exact mode. Otherwise
// the keys are widened to fp32 and the query is used as given.
bool attend_group_int8_query(io::TensorType k_type);

}  // namespace edgellm::ops
