#pragma once
// Scalar (reference) row conversions for every supported storage type. These are the
// ground truth the SIMD kernels are tested against, and back the public dequantize_row /
// quantize_row (not speed-critical: used for embeddings rows, conversion and tests).
#include <cstdint>

#include "io/tensor_type.h"

namespace edgellm::ops::ref {

// n must be a multiple of the block size of t (checked by the public wrappers).
void dequantize(io::TensorType t, const void* src, float* dst, int64_t n);
void quantize(io::TensorType t, const float* src, void* dst, int64_t n);
bool supported(io::TensorType t);

}  // namespace edgellm::ops::ref
