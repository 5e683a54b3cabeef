// Whisper's decoder, one state per window: token embedding + learned positions, pre-norm layers
// of causal self-attention (its own KV cache), cross-attention over the encoder output (keys and
// values computed once per window) and FFN; logits from the tied embedding.
#include <cmath>
#include <algorithm>
#include <cstring>
#include <memory>

#include "asr/whisper.h"
#include "util/error.h"

namespace edgellm::asr {

std::shared_ptr<const CrossKV> WhisperDecoder::cross_kv(const WhisperModel& m, const std::vector<float>& enc,
                                                       ops::ThreadPool& pool) {
  const WhisperConfig& c = m.config();
  const int64_t d = c.d, n = c.n_audio_ctx;
  if (static_cast<int64_t>(enc.size()) != n * d) throw InvalidArgument("encoder output has the wrong size");
  auto cross = std::make_shared<CrossKV>();
  for (const LayerWeights& l : m.decoder_layers()) {
    cross->emplace_back(static_cast<size_t>(n) * 2 * d);
    linear_forward(l.cross.kv, enc.data(), n, cross->back().data(), pool);
  }
  return cross;
}

WhisperDecoder::WhisperDecoder(const WhisperModel& model, const std::vector<float>& enc, ops::ThreadPool& pool)
    : WhisperDecoder(model, cross_kv(model, enc, pool), pool) {}

WhisperDecoder::WhisperDecoder(const WhisperModel& model, std::shared_ptr<const CrossKV> cross, ops::ThreadPool& pool)
    : m_(model), pool_(pool), cross_kv_(std::move(cross)) {
  const WhisperConfig& c = m_.config();
  if (!cross_kv_ || cross_kv_->size() != m_.decoder_layers().size())
    throw InvalidArgument("cross-attention keys/values of another model");
  for (size_t l = 0; l < cross_kv_->size(); ++l) {
    if ((*cross_kv_)[l].size() != static_cast<size_t>(c.n_audio_ctx) * 2 * c.d)
      throw InvalidArgument("cross-attention keys/values of another model");
    k_.emplace_back(static_cast<size_t>(c.n_text_ctx) * c.d);
    v_.emplace_back(static_cast<size_t>(c.n_text_ctx) * c.d);
  }
  logits_.resize(c.n_vocab);
}

WhisperDecoder::WhisperDecoder(const WhisperDecoder& o) : m_(o.m_), pool_(o.pool_), cross_kv_(o.cross_kv_) {
  const size_t rows = static_cast<size_t>(m_.config().n_text_ctx) * m_.config().d;
  k_.assign(o.k_.size(), std::vector<float>(rows));
  v_.assign(o.v_.size(), std::vector<float>(rows));
  logits_ = o.logits_;
  copy_from(o);
}

void WhisperDecoder::copy_from(const WhisperDecoder& o) {
  if (&o == this) return;
  if (&o.m_ != &m_ || k_.size() != o.k_.size()) throw InvalidArgument("decoder states of different models");
  cross_kv_ = o.cross_kv_;
  const size_t used = static_cast<size_t>(o.n_past_) * m_.config().d;
  for (size_t l = 0; l < k_.size(); ++l) {
    std::copy_n(o.k_[l].data(), used, k_[l].data());
    std::copy_n(o.v_[l].data(), used, v_[l].data());
  }
  n_past_ = o.n_past_;
}

void WhisperDecoder::truncate(int n) {
  if (n < n_past_) n_past_ = n < 0 ? 0 : n;
}

const std::vector<float>& WhisperDecoder::feed(const std::vector<int32_t>& tokens) {
  const WhisperConfig& c = m_.config();
  const int64_t d = c.d, T = static_cast<int64_t>(tokens.size()), H = c.dec_heads, hd = d / H;
  if (T == 0) throw InvalidArgument("no tokens to decode");
  m_.count_decoder_step();
  if (n_past_ + T > c.n_text_ctx)
    throw InvalidArgument("the transcript would exceed Whisper's " + std::to_string(c.n_text_ctx) + " tokens");
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> x(T * d), xn(T * d), qkv(T * 3 * d), att(T * d), tmp(T * d), ff(T * c.ff), q(T * d);
  std::vector<uint8_t> scratch;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= c.n_vocab) throw InvalidArgument("token id " + std::to_string(id) + " out of range");
    const uint8_t* row = ops::matrix_row(m_.embedding(), id, scratch);
    ops::dequantize_row(m_.embedding().type, row, x.data() + t * d, d);
    ops::add_f32(x.data() + t * d, m_.decoder_positions() + (n_past_ + t) * d, x.data() + t * d, d);
  }
  const int64_t n_cross = c.n_audio_ctx;
  for (size_t li = 0; li < m_.decoder_layers().size(); ++li) {
    const LayerWeights& l = m_.decoder_layers()[li];
    float* K = k_[li].data();
    float* V = v_[li].data();
    for (int64_t t = 0; t < T; ++t) layer_norm(x.data() + t * d, l.self.norm, xn.data() + t * d, d);
    linear_forward(l.self.qkv, xn.data(), T, qkv.data(), pool_);
    for (int64_t t = 0; t < T; ++t) {
      std::memcpy(K + (n_past_ + t) * d, qkv.data() + t * 3 * d + d, d * sizeof(float));
      std::memcpy(V + (n_past_ + t) * d, qkv.data() + t * 3 * d + 2 * d, d * sizeof(float));
    }
    pool_.parallel_for(T * H, [&](int64_t b, int64_t e, int) {
      std::vector<float> scores(n_past_ + T);
      for (int64_t i = b; i < e; ++i) {
        const int64_t t = i / H, h = i % H;
        ops::attend_head(qkv.data() + t * 3 * d + h * hd, K + h * hd, V + h * hd, d, n_past_ + t + 1, hd, scale,
                         0.0f, scores.data(), att.data() + t * d + h * hd);
      }
    });
    linear_forward(l.self.out, att.data(), T, tmp.data(), pool_);
    ops::add_f32(x.data(), tmp.data(), x.data(), T * d);

    for (int64_t t = 0; t < T; ++t) layer_norm(x.data() + t * d, l.cross.norm, xn.data() + t * d, d);
    linear_forward(l.cross.qkv, xn.data(), T, q.data(), pool_);
    const float* KV = (*cross_kv_)[li].data();
    pool_.parallel_for(T * H, [&](int64_t b, int64_t e, int) {
      std::vector<float> scores(n_cross);
      for (int64_t i = b; i < e; ++i) {
        const int64_t t = i / H, h = i % H;
        ops::attend_head(q.data() + t * d + h * hd, KV + h * hd, KV + d + h * hd, 2 * d, n_cross, hd, scale, 0.0f,
                         scores.data(), att.data() + t * d + h * hd);
      }
    });
    linear_forward(l.cross.out, att.data(), T, tmp.data(), pool_);
    ops::add_f32(x.data(), tmp.data(), x.data(), T * d);

    for (int64_t t = 0; t < T; ++t) layer_norm(x.data() + t * d, l.ffn_norm, xn.data() + t * d, d);
    linear_forward(l.ffn_in, xn.data(), T, ff.data(), pool_);
    gelu_inplace(ff.data(), T * c.ff);
    linear_forward(l.ffn_out, ff.data(), T, tmp.data(), pool_);
    ops::add_f32(x.data(), tmp.data(), x.data(), T * d);
  }
  n_past_ += static_cast<int>(T);
  layer_norm(x.data() + (T - 1) * d, m_.decoder_norm(), xn.data(), d);
  ops::matmul(m_.embedding(), xn.data(), 1, logits_.data(), pool_);
  return logits_;
}

}  // namespace edgellm::asr
