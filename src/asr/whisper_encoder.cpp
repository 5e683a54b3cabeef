// Whisper's encoder: conv(k=3, s=1) + GELU, conv(k=3, s=2) + GELU, positions, pre-norm
// transformer layers (full self-attention over the 1500 frames), final LayerNorm. Convolutions
// are matmuls over im2col rows ([in][3] per output frame, the kernel's own order).
#include <algorithm>
#include <cmath>

#include "asr/whisper.h"
#include "util/error.h"

namespace edgellm::asr {
namespace {

// im2col for a kernel of 3 with padding 1: row t holds x[c][s * t + k - 1] for c, k.
// `x_frame_major` says whether x is [T][C] (true) or [C][T] (the mel).
std::vector<float> im2col(const float* x, int64_t C, int64_t T, int stride, bool x_frame_major) {
  const int64_t T_out = (T - 1) / stride + 1;
  std::vector<float> cols(static_cast<size_t>(T_out) * C * 3, 0.0f);
  for (int64_t t = 0; t < T_out; ++t) {
    float* row = cols.data() + t * C * 3;
    for (int k = 0; k < 3; ++k) {
      const int64_t src = stride * t + k - 1;
      if (src < 0 || src >= T) continue;
      for (int64_t c = 0; c < C; ++c) row[c * 3 + k] = x_frame_major ? x[src * C + c] : x[c * T + src];
    }
  }
  return cols;
}

}  // namespace

std::vector<float> WhisperModel::encode(const float* mel, ops::ThreadPool& pool) const {
  const int64_t d = cfg_.d, T = cfg_.n_frames(), n = cfg_.n_audio_ctx;
  std::vector<float> h1(static_cast<size_t>(T) * d);
  {
    const auto cols = im2col(mel, cfg_.n_mels, T, 1, false);
    linear_forward(conv1_, cols.data(), T, h1.data(), pool);
    gelu_inplace(h1.data(), T * d);
  }
  std::vector<float> x(static_cast<size_t>(n) * d);
  {
    const auto cols = im2col(h1.data(), d, T, 2, true);
    linear_forward(conv2_, cols.data(), n, x.data(), pool);
    gelu_inplace(x.data(), n * d);
  }
  ops::add_f32(x.data(), enc_pos_, x.data(), n * d);

  const int64_t H = cfg_.enc_heads, hd = d / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> xn(n * d), qkv(n * 3 * d), att(n * d), tmp(n * d), ff(n * cfg_.ff);
  std::vector<float> q_h(n * hd), scores(n * n), v_t(hd * n), o_h(n * hd);
  for (const LayerWeights& l : enc_) {
    for (int64_t t = 0; t < n; ++t) layer_norm(x.data() + t * d, l.self.norm, xn.data() + t * d, d);
    linear_forward(l.self.qkv, xn.data(), n, qkv.data(), pool);
    // Per head, as two matmuls on the pool (scores = Q K^T, then P V with V transposed): the
    // 1500 x 1500 attention of every layer is most of the encoder's work, and the gemm kernels
    // run it several times faster than one attend_head per query.
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < hd; ++i) q_h[t * hd + i] = qkv[t * 3 * d + h * hd + i] * scale;
      const ops::MatrixView K{io::TensorType::F32, qkv.data() + d + h * hd, hd, n, 3 * d * sizeof(float),
                              ops::Layout::Rows};
      ops::matmul(K, q_h.data(), n, scores.data(), pool);
      pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) ops::softmax(scores.data() + t * n, n);
      });
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < hd; ++i) v_t[i * n + j] = qkv[j * 3 * d + 2 * d + h * hd + i];
      const ops::MatrixView V{io::TensorType::F32, v_t.data(), n, hd, n * sizeof(float), ops::Layout::Rows};
      ops::matmul(V, scores.data(), n, o_h.data(), pool);
      for (int64_t t = 0; t < n; ++t) std::copy_n(o_h.data() + t * hd, hd, att.data() + t * d + h * hd);
    }
    linear_forward(l.self.out, att.data(), n, tmp.data(), pool);
    ops::add_f32(x.data(), tmp.data(), x.data(), n * d);
    for (int64_t t = 0; t < n; ++t) layer_norm(x.data() + t * d, l.ffn_norm, xn.data() + t * d, d);
    linear_forward(l.ffn_in, xn.data(), n, ff.data(), pool);
    gelu_inplace(ff.data(), n * cfg_.ff);
    linear_forward(l.ffn_out, ff.data(), n, tmp.data(), pool);
    ops::add_f32(x.data(), tmp.data(), x.data(), n * d);
  }
  for (int64_t t = 0; t < n; ++t) layer_norm(x.data() + t * d, enc_norm_, x.data() + t * d, d);
  return x;
}

}  // namespace edgellm::asr
