#pragma once
// W^T of the frozen base matrices, quantized to Q8_0 (and repacked as the engine repacks its
// own matrices), so the backward pass's dx = W^T·dy runs on the engine's int8 matmul kernels.
// Without it, W^T·dy dequantizes W tile by tile on every call (matmul_t_add), which a profile of
// SmolLM2-135M training put at over half the step (dequantization 54%, the axpy products 22%).
// The copy costs about 1.06 bytes per weight; dy is quantized per 32 elements like any matmul
// input, so the gradients carry the int8 error the non-exact forward pass already has. Exact
// mode (--exact) keeps the dequantizing path.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "model/model.h"
#include "ops/ops.h"

namespace edgellm::train {

// Whether W has a Q8_0 transpose: its rows (n_out, the transpose's row length) a multiple of 32.
bool transposable(const ops::MatrixView& W);
// W^T ([n_in] rows of n_out Q8_0 elements) written to `storage`, repacked when the active kernels
// prefer it (ops::repack_preferred). W in any layout and type ops dequantizes. InvalidArgument
// when !transposable(W).
ops::MatrixView transpose_q8_0(const ops::MatrixView& W, std::vector<uint8_t>& storage, ops::ThreadPool& pool);

// The transposes of a model's layer matrices and output head, looked up by the matrix's data.
class TransposedWeights {
 public:
  TransposedWeights(const model::Model& m, ops::ThreadPool& pool);
  // W^T of W, or null when W has none (not transposable: the caller dequantizes instead).
  const ops::MatrixView* find(const ops::MatrixView& W) const;
  uint64_t bytes() const { return bytes_; }

 private:
  void add(const ops::MatrixView& W, ops::ThreadPool& pool);
  std::unordered_map<const void*, ops::MatrixView> views_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> storage_;
  uint64_t bytes_ = 0;
};

// dx[t] += W^T dy[t] with WT = transpose_q8_0(W): one int8 matmul into `tmp` ([T][WT.n_out]).
void matmul_t_add_transposed(const ops::MatrixView& WT, const float* dy, int64_t T, float* dx, ops::ThreadPool& pool,
                             std::vector<float>& tmp);

}  // namespace edgellm::train
