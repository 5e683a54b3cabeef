#pragma once
// Whisper on the ops kernels: the weights of a GGUF made by `edgellm convert` (views into the
// mapping), the encoder (two convolutions + transformer) and a decoder state with its own
// self-attention KV cache and the cross-attention keys/values of one encoded window.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "ops/ops.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::asr {

struct WhisperConfig {
  int n_mels = 80, d = 0, ff = 0, enc_layers = 0, dec_layers = 0, enc_heads = 0, dec_heads = 0;
  int n_audio_ctx = 1500, n_text_ctx = 448, n_vocab = 0;
  bool multilingual = false;
  std::vector<int32_t> lang_ids, suppress_ids, suppress_ids_begin;
  int n_frames() const { return 2 * n_audio_ctx; }  // mel frames of one 30 s window (3000)
};

struct Linear {
  ops::MatrixView w;
  const float* bias = nullptr;  // n_out floats, or null
};
struct Norm {
  const float* gamma = nullptr;
  const float* beta = nullptr;
};
struct AttentionWeights {
  Norm norm;
  Linear qkv;  // self-attention: fused [3d]; cross-attention: q only
  Linear kv;   // cross-attention: fused K, V of the encoder output [2d]
  Linear out;
};
struct LayerWeights {
  AttentionWeights self, cross;
  Norm ffn_norm;
  Linear ffn_in, ffn_out;
};

class WhisperModel {
 public:
  // Maps and validates; ModelFormatError when the file is not a Whisper GGUF.
  static std::unique_ptr<WhisperModel> load(const std::string& path);
  const WhisperConfig& config() const { return cfg_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tok_; }

  // mel: [n_mels][n_frames()] (one padded 30 s window) -> encoder output [n_audio_ctx][d].
  std::vector<float> encode(const float* mel, ops::ThreadPool& pool) const;

  // Internals used by the decoder.
  const std::vector<LayerWeights>& decoder_layers() const { return dec_; }
  const Norm& decoder_norm() const { return dec_norm_; }
  const ops::MatrixView& embedding() const { return emb_; }
  const float* decoder_positions() const { return dec_pos_; }
  // Decoder passes (WhisperDecoder::feed calls) run on this model so far (timing figures).
  int64_t decoder_steps() const { return steps_.load(std::memory_order_relaxed); }
  void count_decoder_step() const { steps_.fetch_add(1, std::memory_order_relaxed); }

 private:
  WhisperModel() = default;
  std::unique_ptr<io::GgufFile> file_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  WhisperConfig cfg_;
  Linear conv1_, conv2_;  // kernels as [d][in * 3] matrices
  const float* enc_pos_ = nullptr;
  std::vector<LayerWeights> enc_, dec_;
  Norm enc_norm_, dec_norm_;
  ops::MatrixView emb_;
  const float* dec_pos_ = nullptr;
  std::vector<std::vector<float>> f32_;  // F16 vectors widened once at load
  mutable std::atomic<int64_t> steps_{0};
  std::vector<std::vector<uint8_t>> packed_;  // repacked quantized matrices (ops::repack)
  const float* vec(const std::string& name, int64_t n);
  Linear linear(const std::string& name, int64_t n_in, int64_t n_out, bool bias = true, bool many_tokens = false);
  Norm norm(const std::string& name);
};

// The cross-attention keys and values of one encoded window: per decoder layer [n_audio_ctx][2d].
using CrossKV = std::vector<std::vector<float>>;

// One decoding pass over one encoded window: keys/values of the tokens fed so far.
class WhisperDecoder {
 public:
  // The window's cross-attention keys/values: computed once and shared by every decoder over it
  // (language detection, each temperature of the fallback, beams).
  static std::shared_ptr<const CrossKV> cross_kv(const WhisperModel& model, const std::vector<float>& encoder_out,
                                                 ops::ThreadPool& pool);
  WhisperDecoder(const WhisperModel& model, const std::vector<float>& encoder_out, ops::ThreadPool& pool);
  WhisperDecoder(const WhisperModel& model, std::shared_ptr<const CrossKV> cross, ops::ThreadPool& pool);
  // Another hypothesis over the same window: shares the cross-attention keys/values (computed
  // once per window), copies the self-attention cache of the tokens fed so far.
  WhisperDecoder(const WhisperDecoder& other);
  // Takes `other`'s fed tokens (same model and window): a beam moving to another's history.
  void copy_from(const WhisperDecoder& other);
  // Feeds tokens after those already fed; returns the logits [n_vocab] after the last one.
  // InvalidArgument when the text context (448 positions) would overflow.
  const std::vector<float>& feed(const std::vector<int32_t>& tokens);
  // Drops fed tokens past `n` (a new prompt over the same audio).
  void truncate(int n);
  int n_past() const { return n_past_; }

 private:
  const WhisperModel& m_;
  ops::ThreadPool& pool_;
  int n_past_ = 0;
  std::vector<std::vector<float>> k_, v_;           // per layer [n_text_ctx][d]
  std::shared_ptr<const CrossKV> cross_kv_;
  std::vector<float> logits_;
};

// Helpers shared by the encoder and decoder (whisper_layers.cpp).
void layer_norm(const float* x, const Norm& n, float* out, int64_t d);
void gelu_inplace(float* x, int64_t n);
// layer_norm of n_tokens rows of d, and GELU of n values, split over the pool when large.
void layer_norm_rows(const float* x, int64_t n_tokens, const Norm& n, float* out, int64_t d, ops::ThreadPool& pool);
void gelu_rows(float* x, int64_t n, ops::ThreadPool& pool);
void linear_forward(const Linear& l, const float* x, int64_t n_tokens, float* y, ops::ThreadPool& pool);

}  // namespace edgellm::asr
