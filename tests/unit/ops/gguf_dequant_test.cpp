// Driven by tests/python/test_ops_dequant.py: compares our dequantization with reference
// values computed by the gguf Python package, read from a GGUF file the Python test wrote
// (tensors "q.<TYPE>" raw, "ref.<TYPE>" F32). Skipped when run on its own.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "ops/ops.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {

TEST(GgufDequant, MatchesGgufPackage) {
  const char* path = std::getenv("EDGELLM_DEQUANT_GGUF");
  if (!path) GTEST_SKIP() << "EDGELLM_DEQUANT_GGUF not set; run tests/python/test_ops_dequant.py";
  const char* expect = std::getenv("EDGELLM_DEQUANT_EXPECT");
  auto file = io::GgufFile::open(path);
  testing::IsaGuard guard;
  int checked = 0;
  for (const io::TensorInfo& q : file->tensors()) {
    if (q.name.rfind("q.", 0) != 0) continue;
    const io::TensorInfo* ref = file->find_tensor("ref." + q.name.substr(2));
    ASSERT_NE(ref, nullptr) << q.name;
    ASSERT_EQ(ref->type, io::TensorType::F32);
    ASSERT_EQ(q.ne, ref->ne) << q.name;
    ASSERT_TRUE(type_supported(q.type)) << q.name;
    const int64_t n = q.ne[0], rows = q.rows();
    const size_t rb = io::row_bytes(q.type, n);
    const float* expected = reinterpret_cast<const float*>(ref->data);
    std::vector<float> y(n);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(q.type, q.data + r * rb, y.data(), n);
      double rmax = 0;
      for (int64_t i = 0; i < n; ++i) rmax = std::max(rmax, double(std::fabs(expected[r * n + i])));
      // Same formula, possibly different float evaluation order: a few ulp of the row scale.
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[i], expected[r * n + i], 1e-6 * rmax) << q.name << " row " << r << " i " << i;
    }
    // The matmul kernels decode the same bytes: with a one-hot input on every ISA, each
    // output is one weight (exact for float formats; int8 input quantization of a one-hot
    // vector is exact too, so the only error is fp32 accumulation).
    const io::TensorInfo* qt = &q;
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      ThreadPool pool(2);
      std::vector<float> x(n, 0.f), out(rows);
      for (int64_t i : {int64_t{0}, n / 3, n - 1}) {
        std::fill(x.begin(), x.end(), 0.f);
        x[i] = 1.f;
        matmul({qt->type, qt->data, n, rows, rb}, x.data(), 1, out.data(), pool);
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_NEAR(out[r], expected[r * n + i], 1e-5 * (1 + std::fabs(expected[r * n + i])))
              << q.name << " isa " << isa << " row " << r << " i " << i;
      }
    }
    ++checked;
  }
  if (expect) {
    EXPECT_EQ(checked, std::atoi(expect));
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace edgellm::ops
