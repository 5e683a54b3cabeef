// The X16 layout (ops/pack_x16.h: Q5_0 / Q8_0, 16 rows per block for the AVX-512 VNNI tile):
// rows read back unchanged, and products through it equal the row-major matmul of the same ISA
// to float rounding (same exact integer block sums, float steps in another order) for 1-17
// tokens (one to three tiles of 8, with tails), rows not a multiple of 16, rows of 1-28 blocks,
// extreme weights and activations (Q8_0's -128, the largest Q5_0 quants), a misaligned packed
// buffer, VNNI on and off, on every ISA. Where the CPU lacks VNNI the layout is never chosen and
// the test packs it anyway (its unpacked path then runs everywhere).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "io/tensor_type.h"
#include "ops/ops.h"
#include "ops/pack_x16.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::IsaGuard;
using testing::Misaligned;
using testing::random_floats;

// W packed into X16 by hand (repack picks X16 only with VNNI), at dst.
MatrixView pack_x16(const MatrixView& W, uint8_t* dst) {
  const int64_t groups = (W.n_out + x16::kRows - 1) / x16::kRows;
  const size_t gb = x16::group_bytes(W.type, W.n_in);
  for (int64_t g = 0; g < groups; ++g)
    x16::pack_group(W.type, static_cast<const uint8_t*>(W.data), W.row_stride, W.n_in, W.n_out, g, dst + g * gb);
  MatrixView P = W;
  P.data = dst;
  P.layout = Layout::X16;
  return P;
}

TEST(RepackX16, RowsAndProductsMatchRowMajor) {
  IsaGuard guard;
  for (TensorType t : {TensorType::Q5_0, TensorType::Q8_0}) {
    for (const int64_t n_in : {32, 160, 896}) {
      for (const int64_t n_out : {1, 13, 16, 37}) {
        const size_t rb = io::row_bytes(t, n_in);
        std::vector<uint8_t> w(rb * n_out);
        auto wf = random_floats(static_cast<size_t>(n_in * n_out), 61 + static_cast<uint32_t>(n_out));
        for (size_t i = 0; i < wf.size(); i += 7) wf[i] = i % 2 ? 1.f : -1.f;  // block extremes
        for (int64_t o = 0; o < n_out; ++o) quantize_row(t, &wf[o * n_in], w.data() + o * rb, n_in);
        const MatrixView W{t, w.data(), n_in, n_out, rb};
        const size_t bytes = x16::group_bytes(t, n_in) * static_cast<size_t>((n_out + 15) / 16);
        ASSERT_EQ(bytes, rb * static_cast<size_t>((n_out + 15) / 16) * 16);  // the rows' own bytes
        Misaligned buf(bytes, 4);
        const MatrixView P = pack_x16(W, buf.data());
        std::vector<uint8_t> scratch;
        for (int64_t r = 0; r < n_out; ++r)
          ASSERT_EQ(std::memcmp(matrix_row(P, r, scratch), w.data() + r * rb, rb), 0) << io::type_name(t) << " row " << r;
        const int64_t max_tok = 17;
        auto x = random_floats(static_cast<size_t>(n_in * max_tok), 62, -1.f, 1.f);
        for (size_t i = 0; i < x.size(); i += 29) x[i] = i % 2 ? 8.f : -8.f;
        for (const std::string& isa : available_isas()) {
          ASSERT_TRUE(force_isa(isa));
          for (const bool vnni : {true, false}) {
            set_vnni_allowed(vnni);
            ThreadPool pool(2);
            for (int64_t nt = 1; nt <= max_tok; ++nt) {
              std::vector<float> yr(static_cast<size_t>(n_out * nt)), yp(yr.size());
              matmul(W, x.data(), nt, yr.data(), pool);
              matmul(P, x.data(), nt, yp.data(), pool);
              for (size_t i = 0; i < yr.size(); ++i)
                ASSERT_NEAR(yp[i], yr[i], 1e-5 * (1 + std::fabs(yr[i])))
                    << isa << " vnni=" << vnni << " " << io::type_name(t) << " n_in=" << n_in << " n_out=" << n_out
                    << " tokens=" << nt << " i=" << i;
            }
          }
        }
      }
    }
  }
  set_vnni_allowed(true);
}

TEST(RepackX16, ChosenWhereTheVnniKernelRuns) {
  IsaGuard guard;
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    const bool x16 = use_vnni() && isa == "avx3";
    EXPECT_EQ(repacked_layout(TensorType::Q5_0), x16 ? Layout::X16 : Layout::X4) << isa;
    EXPECT_EQ(repacked_layout(TensorType::Q8_0), x16 ? Layout::X16 : Layout::X4) << isa;
    EXPECT_EQ(repacked_layout(TensorType::Q4_0), Layout::X4) << isa;
    EXPECT_EQ(repacked_layout(TensorType::Q6_K), Layout::K8) << isa;
    set_vnni_allowed(false);
    EXPECT_EQ(repacked_layout(TensorType::Q5_0), Layout::X4) << isa;
    set_vnni_allowed(true);
  }
}

}  // namespace
}  // namespace edgellm::ops
