#include <cstring>

#include "asr/whisper.h"
#include "ops/gemm_q8.h"
#include "ops/fp16.h"
#include "util/error.h"

namespace edgellm::asr {

using io::TensorType;

const float* WhisperModel::vec(const std::string& name, int64_t n) {
  const io::TensorInfo& t = file_->require_tensor(name, {n});
  if (t.type == TensorType::F32) return reinterpret_cast<const float*>(t.data);
  if (t.type != TensorType::F16)
    throw ModelFormatError(file_->path() + ": tensor '" + name + "' must be F32 or F16");
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = ops::load_f16(t.data + 2 * i);
  f32_.push_back(std::move(v));
  return f32_.back().data();
}

Linear WhisperModel::linear(const std::string& name, int64_t n_in, int64_t n_out, bool bias, bool many_tokens) {
  const io::TensorInfo& t = file_->require_tensor(name + ".weight", {n_in, n_out});
  if (!ops::type_supported(t.type))
    throw ModelFormatError(file_->path() + ": tensor '" + name + ".weight' has an unsupported type");
  Linear l;
  l.w = ops::MatrixView{t.type, t.data, n_in, n_out, io::row_bytes(t.type, n_in), ops::Layout::Rows};
  // Quantized matrices in the layout the active kernels read fastest (Q8_0/Q4_0... as X4), unless
  // they only ever see the 1500 encoder frames and the VNNI tiles take them (which read rows).
  const bool vnni_rows = many_tokens && ops::q8_tiled_available(l.w, cfg_.n_audio_ctx);
  if (ops::repack_preferred(t.type) && !vnni_rows) {
    packed_.emplace_back();
    l.w = ops::repack(l.w, packed_.back());
  }
  if (bias) l.bias = vec(name + ".bias", n_out);
  return l;
}

Norm WhisperModel::norm(const std::string& name) {
  return Norm{vec(name + ".gamma", cfg_.d), vec(name + ".beta", cfg_.d)};
}

std::unique_ptr<WhisperModel> WhisperModel::load(const std::string& path) {
  std::unique_ptr<WhisperModel> m(new WhisperModel());
  m->file_ = io::GgufFile::open(path);
  io::GgufFile& f = *m->file_;
  if (f.get_string("general.architecture").value_or("") != "whisper")
    throw ModelFormatError(path + " is not a Whisper model (make one with `edgellm convert`)");
  WhisperConfig& c = m->cfg_;
  auto get = [&](const char* key) {
    const int64_t v = f.require_int(key);
    if (v <= 0 || v > (1 << 20)) throw ModelFormatError(path + ": bad " + key);
    return static_cast<int>(v);
  };
  c.n_mels = get("whisper.n_mels");
  c.d = get("whisper.embedding_length");
  c.ff = get("whisper.feed_forward_length");
  c.enc_layers = get("whisper.encoder.block_count");
  c.dec_layers = get("whisper.decoder.block_count");
  c.enc_heads = get("whisper.encoder.attention.head_count");
  c.dec_heads = get("whisper.decoder.attention.head_count");
  c.n_audio_ctx = get("whisper.audio_context_length");
  c.n_text_ctx = get("whisper.text_context_length");
  c.n_vocab = get("whisper.vocab_size");
  c.multilingual = f.get_bool("whisper.multilingual").value_or(false);
  if (c.d % c.enc_heads || c.d % c.dec_heads) throw ModelFormatError(path + ": heads do not divide the width");
  auto ids = [&](const char* key) {
    std::vector<int32_t> out;
    for (int64_t v : f.get_int_array(key).value_or(std::vector<int64_t>{}))
      if (v >= 0 && v < c.n_vocab) out.push_back(static_cast<int32_t>(v));
    return out;
  };
  c.lang_ids = ids("whisper.lang_ids");
  c.suppress_ids = ids("whisper.suppress_ids");
  c.suppress_ids_begin = ids("whisper.suppress_ids_begin");
  m->tok_ = tokenizer::Tokenizer::from_gguf(f);
  if (m->tok_->n_vocab() != c.n_vocab) throw ModelFormatError(path + ": vocabulary and embedding differ in size");

  const int64_t d = c.d;
  auto conv = [&](const std::string& name, int64_t in) {
    const io::TensorInfo& t = f.require_tensor(name + ".weight", {3, in, d});
    if (t.type != TensorType::F16 && t.type != TensorType::F32)
      throw ModelFormatError(path + ": convolution '" + name + "' must be F16 or F32");
    // [d][in][3] row-major is a [d][in * 3] matrix: one output channel per row.
    return Linear{ops::MatrixView{t.type, t.data, in * 3, d, io::row_bytes(t.type, in * 3), ops::Layout::Rows},
                  m->vec(name + ".bias", d)};
  };
  m->conv1_ = conv("encoder.conv1", c.n_mels);
  m->conv2_ = conv("encoder.conv2", d);
  auto pos = [&](const std::string& name, int64_t rows) -> const float* {
    const io::TensorInfo& t = f.require_tensor(name, {d, rows});
    if (t.type == TensorType::F32) return reinterpret_cast<const float*>(t.data);
    if (t.type != TensorType::F16) throw ModelFormatError(path + ": '" + name + "' must be F16 or F32");
    std::vector<float> v(rows * d);
    for (int64_t i = 0; i < rows * d; ++i) v[i] = ops::load_f16(t.data + 2 * i);
    m->f32_.push_back(std::move(v));
    return m->f32_.back().data();
  };
  m->enc_pos_ = pos("encoder.position_encodings.encodings", c.n_audio_ctx);
  m->dec_pos_ = pos("decoder.position_encodings.encodings", c.n_text_ctx);
  auto layer = [&](const std::string& p, bool decoder) {
    LayerWeights l;
    const bool enc = !decoder;  // encoder matrices only run over the 1500 frames
    l.self.norm = m->norm(p + "self_attention.layer_norm");
    l.self.qkv = m->linear(p + "self_attention.linear_0", d, 3 * d, true, enc);
    l.self.out = m->linear(p + "self_attention.linear_1", d, d, true, enc);
    if (decoder) {
      l.cross.norm = m->norm(p + "attention.layer_norm");
      l.cross.qkv = m->linear(p + "attention.linear_0", d, d);
      l.cross.kv = m->linear(p + "attention.linear_1", d, 2 * d, true, true);
      l.cross.out = m->linear(p + "attention.linear_2", d, d);
    }
    l.ffn_norm = m->norm(p + "ffn.layer_norm");
    l.ffn_in = m->linear(p + "ffn.linear_0", d, c.ff, true, enc);
    l.ffn_out = m->linear(p + "ffn.linear_1", c.ff, d, true, enc);
    return l;
  };
  for (int i = 0; i < c.enc_layers; ++i) m->enc_.push_back(layer("encoder.layer_" + std::to_string(i) + ".", false));
  for (int i = 0; i < c.dec_layers; ++i) m->dec_.push_back(layer("decoder.layer_" + std::to_string(i) + ".", true));
  m->enc_norm_ = m->norm("encoder.layer_norm");
  m->dec_norm_ = m->norm("decoder.layer_norm");
  m->emb_ = m->linear("decoder.embeddings", d, c.n_vocab, false).w;
  return m;
}

}  // namespace edgellm::asr
