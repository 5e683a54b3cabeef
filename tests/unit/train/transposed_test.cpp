// Q8_0 transposes of base matrices for the fine-tuning backward pass (train/transposed.h): the
// transpose against the dequantized matrix transposed by a plain loop, and W^T·dy through it
// against the dequantizing matmul_t_add, on every ISA, for weight types and layouts the engine
// loads, with several thread counts. (Gradients end to end: tests/python/test_finetune_grad.py.)
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "../ops/test_util.h"
#include "ops/ops.h"
#include "train/grad_ops.h"
#include "train/transposed.h"
#include "util/error.h"

namespace edgellm::train {
namespace {

using io::TensorType;
using ops::Layout;
using ops::MatrixView;

struct Quantized {
  std::vector<uint8_t> bytes, repacked;
  MatrixView view;
  std::vector<float> dequantized;  // [n_out][n_in]
};

Quantized make(TensorType t, int64_t n_in, int64_t n_out, uint32_t seed, bool repack) {
  Quantized q;
  const auto& tr = io::traits(t);
  const size_t row = static_cast<size_t>(n_in / tr.block_elems) * tr.block_bytes;
  const auto src = ops::testing::random_floats(static_cast<size_t>(n_in * n_out), seed);
  q.bytes.resize(row * n_out);
  for (int64_t r = 0; r < n_out; ++r) ops::quantize_row(t, &src[r * n_in], &q.bytes[r * row], n_in);
  q.view = MatrixView{t, q.bytes.data(), n_in, n_out, row, Layout::Rows};
  q.dequantized.resize(src.size());
  for (int64_t r = 0; r < n_out; ++r) ops::dequantize_row(t, &q.bytes[r * row], &q.dequantized[r * n_in], n_in);
  if (repack) q.view = ops::repack(q.view, q.repacked);
  return q;
}

std::vector<std::pair<TensorType, bool>> cases() {
  std::vector<std::pair<TensorType, bool>> out;
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1,
                       TensorType::Q4_K, TensorType::Q6_K}) {
    out.push_back({t, false});
    if (ops::repackable(t)) out.push_back({t, true});
  }
  return out;
}

TEST(TransposeQ8_0, EqualsTheDequantizedTransposeWithinOneQ8Step) {
  ops::testing::for_each_isa([](const std::string& isa) {
    uint32_t seed = 1;
    for (auto [t, repack] : cases()) {
      const int64_t be = io::traits(t).block_elems;
      const int64_t n_in = be == 256 ? 512 : 96;
      for (int64_t n_out : {32, 96, 160})
        for (int threads : {1, 2, 3}) {
          ops::ThreadPool pool(threads);
          const Quantized q = make(t, n_in, n_out, seed++, repack);
          std::vector<uint8_t> storage, raw;
          const MatrixView WT = transpose_q8_0(q.view, storage, pool);
          ASSERT_EQ(WT.type, TensorType::Q8_0);
          ASSERT_EQ(WT.n_in, n_out);
          ASSERT_EQ(WT.n_out, n_in);
          std::vector<float> row(static_cast<size_t>(n_out));
          for (int64_t i = 0; i < n_in; ++i) {
            ops::dequantize_row(TensorType::Q8_0, ops::matrix_row(WT, i, raw), row.data(), n_out);
            for (int64_t b = 0; b < n_out; b += 32) {
              float amax = 0.0f;
              for (int64_t r = b; r < b + 32; ++r) amax = std::max(amax, std::fabs(q.dequantized[r * n_in + i]));
              // Half a step of 127 levels, plus the fp16 scale's rounding.
              const float tol = amax / 127.0f * 0.5f + amax * 1e-3f + 1e-7f;
              for (int64_t r = b; r < b + 32; ++r)
                ASSERT_NEAR(row[r], q.dequantized[r * n_in + i], tol)
                    << isa << " " << io::type_name(t) << (repack ? " repacked" : "") << " n_out " << n_out
                    << " row " << r << " col " << i;
            }
          }
        }
    }
  });
}

TEST(TransposeQ8_0, ProductMatchesTheDequantizingBackward) {
  ops::testing::for_each_isa([](const std::string& isa) {
    uint32_t seed = 100;
    for (auto [t, repack] : cases()) {
      const int64_t n_in = io::traits(t).block_elems == 256 ? 256 : 64;
      for (int64_t T : {1, 3, 17}) {
        ops::ThreadPool pool(2);
        const int64_t n_out = 96;
        const Quantized q = make(t, n_in, n_out, seed++, repack);
        std::vector<uint8_t> storage;
        const MatrixView WT = transpose_q8_0(q.view, storage, pool);
        const auto dy = ops::testing::random_floats(static_cast<size_t>(T * n_out), seed++);
        const auto dx0 = ops::testing::random_floats(static_cast<size_t>(T * n_in), seed++);
        std::vector<float> ref = dx0, got = dx0, tmp;
        matmul_t_add(q.view, dy.data(), T, ref.data(), pool);
        matmul_t_add_transposed(WT, dy.data(), T, got.data(), pool, tmp);
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < ref.size(); ++i) {
          num += (got[i] - ref[i]) * static_cast<double>(got[i] - ref[i]);
          den += (ref[i] - dx0[i]) * static_cast<double>(ref[i] - dx0[i]);
        }
        // int8 weights and int8 dy: about 1% of the product's norm.
        EXPECT_LT(std::sqrt(num / den), 0.02) << isa << " " << io::type_name(t) << (repack ? " repacked" : "")
                                              << " T " << T;
      }
    }
  });
}

TEST(TransposeQ8_0, RowsNotAMultipleOf32AreRejected) {
  ops::ThreadPool pool(1);
  const Quantized q = make(TensorType::Q8_0, 64, 33, 7, false);
  EXPECT_FALSE(transposable(q.view));
  std::vector<uint8_t> storage;
  EXPECT_THROW(transpose_q8_0(q.view, storage, pool), InvalidArgument);
}

}  // namespace
}  // namespace edgellm::train
