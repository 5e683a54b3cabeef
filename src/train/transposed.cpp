#include "train/transposed.h"

#include <algorithm>

#include "util/error.h"

namespace edgellm::train {
namespace {
constexpr int64_t kBlock = 32;  // Q8_0 block: 32 rows of W become one block of each transposed row
}

bool transposable(const ops::MatrixView& W) { return W.n_out > 0 && W.n_in > 0 && W.n_out % kBlock == 0; }

ops::MatrixView transpose_q8_0(const ops::MatrixView& W, std::vector<uint8_t>& storage, ops::ThreadPool& pool) {
  if (!transposable(W))
    throw InvalidArgument("transpose_q8_0: the matrix's " + std::to_string(W.n_out) +
                          " rows are not a multiple of 32");
  const size_t block_bytes = io::traits(io::TensorType::Q8_0).block_bytes;
  const int64_t n_strips = W.n_out / kBlock;
  const size_t row_bytes = static_cast<size_t>(n_strips) * block_bytes;  // one row of W^T
  std::vector<uint8_t> rows(static_cast<size_t>(W.n_in) * row_bytes);
  // One strip of 32 rows of W at a time per thread: dequantized, then each of its n_in columns
  // becomes block s of row i of W^T. Strips write disjoint blocks.
  pool.parallel_for(n_strips, [&](int64_t b, int64_t e, int) {
    std::vector<uint8_t> raw;
    std::vector<float> strip(static_cast<size_t>(kBlock * W.n_in)), col(kBlock);
    for (int64_t s = b; s < e; ++s) {
      for (int64_t r = 0; r < kBlock; ++r)
        ops::dequantize_row(W.type, ops::matrix_row(W, s * kBlock + r, raw), &strip[r * W.n_in], W.n_in);
      for (int64_t i = 0; i < W.n_in; ++i) {
        for (int64_t r = 0; r < kBlock; ++r) col[r] = strip[r * W.n_in + i];
        ops::quantize_row(io::TensorType::Q8_0, col.data(), &rows[i * row_bytes + s * block_bytes], kBlock);
      }
    }
  });
  ops::MatrixView t{io::TensorType::Q8_0, nullptr, W.n_out, W.n_in, row_bytes, ops::Layout::Rows};
  if (ops::repack_preferred(io::TensorType::Q8_0)) {
    t.data = rows.data();
    return ops::repack(t, storage);
  }
  storage = std::move(rows);
  t.data = storage.data();
  return t;
}

TransposedWeights::TransposedWeights(const model::Model& m, ops::ThreadPool& pool) {
  const auto& w = m.weights();
  for (const auto& L : w.layers)
    for (const ops::MatrixView* W : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*W, pool);
  add(w.output, pool);
}

void TransposedWeights::add(const ops::MatrixView& W, ops::ThreadPool& pool) {
  if (!W.data || !transposable(W) || views_.count(W.data)) return;
  storage_.push_back(std::make_unique<std::vector<uint8_t>>());
  views_[W.data] = transpose_q8_0(W, *storage_.back(), pool);
  storage_.back()->shrink_to_fit();
  bytes_ += storage_.back()->size();
}

const ops::MatrixView* TransposedWeights::find(const ops::MatrixView& W) const {
  const auto it = views_.find(W.data);
  return it == views_.end() ? nullptr : &it->second;
}

void matmul_t_add_transposed(const ops::MatrixView& WT, const float* dy, int64_t T, float* dx, ops::ThreadPool& pool,
                             std::vector<float>& tmp) {
  const size_t n = static_cast<size_t>(T * WT.n_out);
  if (tmp.size() < n) tmp.resize(n);
  ops::matmul(WT, dy, T, tmp.data(), pool);
  ops::add_f32(dx, tmp.data(), dx, static_cast<int64_t>(n));
}

}  // namespace edgellm::train
