// Whisper's encoder: conv(k=3, s=1) + GELU, conv(k=3, s=2) + GELU, positions, pre-norm
// transformer layers (full self-attention over the 1500 frames), final LayerNorm. Convolutions
// are matmuls over im2col rows ([in][3] per output frame, the kernel's own order).
#include <algorithm>
#include <cmath>

#include "asr/whisper.h"
#include "ops/attention_rows.h"
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
    gelu_rows(h1.data(), T * d, pool);
  }
  std::vector<float> x(static_cast<size_t>(n) * d);
  {
    const auto cols = im2col(h1.data(), d, T, 2, true);
    linear_forward(conv2_, cols.data(), n, x.data(), pool);
    gelu_rows(x.data(), n * d, pool);
  }
  ops::add_f32(x.data(), enc_pos_, x.data(), n * d);

  const int64_t H = cfg_.enc_heads, hd = d / H;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> xn(n * d), qkv(n * 3 * d), att(n * d), tmp(n * d), ff(n * cfg_.ff);
  for (const LayerWeights& l : enc_) {
    layer_norm_rows(x.data(), n, l.self.norm, xn.data(), d, pool);
    linear_forward(l.self.qkv, xn.data(), n, qkv.data(), pool);
    // Every frame attends to every frame: blocks of queries per head against K and V read in
    // place from the fused QKV rows (ops/attention_rows.h).
    const size_t st = static_cast<size_t>(3 * d);
    ops::attention_rows(qkv.data(), st, qkv.data() + d, st, qkv.data() + 2 * d, st, n, n, H, hd, scale, att.data(),
                        static_cast<size_t>(d), pool);
    linear_forward(l.self.out, att.data(), n, tmp.data(), pool);
    ops::add_f32(x.data(), tmp.data(), x.data(), n * d);
    layer_norm_rows(x.data(), n, l.ffn_norm, xn.data(), d, pool);
    linear_forward(l.ffn_in, xn.data(), n, ff.data(), pool);
    gelu_rows(ff.data(), n * cfg_.ff, pool);
    linear_forward(l.ffn_out, ff.data(), n, tmp.data(), pool);
    ops::add_f32(x.data(), tmp.data(), x.data(), n * d);
  }
  layer_norm_rows(x.data(), n, enc_norm_, x.data(), d, pool);
  return x;
}

}  // namespace edgellm::asr
