#include "ops/gelu_erf.h"

#include "ops/kernel_table.h"

namespace edgellm::ops {

void gelu_erf(float* x, int64_t n) {
  if (n > 0) active_kernels().gelu_erf(x, n);
}

}  // namespace edgellm::ops
