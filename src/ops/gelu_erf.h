#pragma once
// GELU in its erf form, x * (1 + erf(x / sqrt 2)) / 2, as Whisper and BERT were trained with
// (gelu_mul in ops.h is the tanh form). Vector kernel per target (kernels_gelu-inl.h).
#include <cstdint>

namespace edgellm::ops {

// x[0..n) in place; |error| below 1e-6 * (1 + |x|) against the exact function.
void gelu_erf(float* x, int64_t n);

}  // namespace edgellm::ops
