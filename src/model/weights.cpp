#include "model/weights.h"

#include <string>

namespace edgellm::model {

ops::MatrixView tensor_matrix(const io::GgufFile& file, const std::string& name, int64_t n_in, int64_t n_out) {
  const io::TensorInfo& t = file.require_tensor(name, {n_in, n_out});
  if (!ops::type_supported(t.type))
    throw ModelFormatError(file.path() + ": tensor '" + name + "' has type " + std::string(io::type_name(t.type)) +
                           ", which this build cannot compute with");
  ops::MatrixView m;
  m.type = t.type;
  m.data = t.data;
  m.n_in = n_in;
  m.n_out = n_out;
  m.row_stride = io::row_bytes(t.type, n_in);
  return m;
}

std::vector<float> tensor_vector(const io::GgufFile& file, const std::string& name, int64_t n) {
  const io::TensorInfo& t = file.require_tensor(name, {n});
  if (t.type != io::TensorType::F32 && t.type != io::TensorType::F16 && t.type != io::TensorType::BF16)
    throw ModelFormatError(file.path() + ": tensor '" + name + "' must be F32, F16 or BF16, not " +
                           std::string(io::type_name(t.type)));
  std::vector<float> out(n);
  ops::dequantize_row(t.type, t.data, out.data(), n);
  return out;
}

namespace {

class Loader {
 public:
  Loader(const io::GgufFile& f) : f_(f) {}

  ops::MatrixView matrix(const std::string& name, int64_t n_in, int64_t n_out) {
    const ops::MatrixView m = tensor_matrix(f_, name, n_in, n_out);
    bytes += m.row_stride * static_cast<uint64_t>(n_out);
    return m;
  }

  std::vector<float> vector(const std::string& name, int64_t n) { return tensor_vector(f_, name, n); }

  // Rows [first, first + n) of a fused matrix of n_total rows (Phi-3's attn_qkv, gate+up), as
  // a matrix of its own: rows are contiguous, so the view is an offset, repacked like any other.
  ops::MatrixView rows(const std::string& name, int64_t n_in, int64_t n_total, int64_t first, int64_t n,
                       Weights& w) {
    ops::MatrixView m = matrix(name, n_in, n_total);
    bytes -= static_cast<uint64_t>(n_total - n) * m.row_stride;  // this view reads n rows of it
    m.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(first) * m.row_stride;
    m.n_out = n;
    return prefer_layout(m, w);
  }

  // Matrices read only by matmuls, in the layout the active kernels prefer.
  ops::MatrixView layer_matrix(const std::string& name, int64_t n_in, int64_t n_out, Weights& w) {
    return prefer_layout(matrix(name, n_in, n_out), w);
  }

  // m itself, or a repacked copy of it when the active kernels read that faster. The embedding
  // lookup keeps reading the file's rows (of a tied output head too), faulting back in only the
  // pages of the tokens it looks up.
  ops::MatrixView prefer_layout(const ops::MatrixView& m, Weights& w) {
    if (!ops::repack_preferred(m.type)) return m;
    uint8_t* copy = w.repacked.allocate(ops::repacked_bytes(m));
    // The file's copy is not read again: its pages leave this process's memory as the copy
    // grows (about 1 MiB at a time), so a large matrix (the output head) never exists twice.
    return ops::repack(m, copy,
                       [this](const void* p, size_t n) { f_.release_pages(p, n); });
  }

  uint64_t bytes = 0;

 private:

  const io::GgufFile& f_;
};

}  // namespace

Weights load_weights(const io::GgufFile& f, const ModelConfig& c) {
  Loader L(f);
  Weights w;
  w.token_embd = L.matrix("token_embd.weight", c.n_embd, c.n_vocab);
  const uint64_t embd_bytes = L.bytes;
  w.output_norm = L.vector("output_norm.weight", c.n_embd);
  w.tied_output = f.find_tensor("output.weight") == nullptr;
  if (w.tied_output) {
    w.output = L.prefer_layout(w.token_embd, w);
  } else {
    w.output = L.layer_matrix("output.weight", c.n_embd, c.n_vocab, w);
  }
  w.layers.resize(c.n_layer);
  for (int32_t il = 0; il < c.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    l.attn_norm = L.vector(p + "attn_norm.weight", c.n_embd);
    if (c.fused_qkv) {
      const int64_t qd = c.q_dim(), kvd = c.kv_dim(), all = qd + 2 * kvd;
      l.wq = L.rows(p + "attn_qkv.weight", c.n_embd, all, 0, qd, w);
      l.wk = L.rows(p + "attn_qkv.weight", c.n_embd, all, qd, kvd, w);
      l.wv = L.rows(p + "attn_qkv.weight", c.n_embd, all, qd + kvd, kvd, w);
    } else {
      l.wq = L.layer_matrix(p + "attn_q.weight", c.n_embd, c.q_dim(), w);
      l.wk = L.layer_matrix(p + "attn_k.weight", c.n_embd, c.kv_dim(), w);
      l.wv = L.layer_matrix(p + "attn_v.weight", c.n_embd, c.kv_dim(), w);
    }
    l.wo = L.layer_matrix(p + "attn_output.weight", c.q_dim(), c.n_embd, w);
    if (c.qkv_bias) {
      l.bq = L.vector(p + "attn_q.bias", c.q_dim());
      l.bk = L.vector(p + "attn_k.bias", c.kv_dim());
      l.bv = L.vector(p + "attn_v.bias", c.kv_dim());
    }
    if (c.qk_norm) {
      l.q_norm = L.vector(p + "attn_q_norm.weight", c.head_dim);
      l.k_norm = L.vector(p + "attn_k_norm.weight", c.head_dim);
    }
    if (c.post_attn_norm) l.post_attn_norm = L.vector(p + "post_attention_norm.weight", c.n_embd);
    l.ffn_norm = L.vector(p + "ffn_norm.weight", c.n_embd);
    if (c.fused_gate_up) {
      l.w_gate = L.rows(p + "ffn_up.weight", c.n_embd, 2 * c.n_ff, 0, c.n_ff, w);
      l.w_up = L.rows(p + "ffn_up.weight", c.n_embd, 2 * c.n_ff, c.n_ff, c.n_ff, w);
    } else {
      l.w_gate = L.layer_matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff, w);
      l.w_up = L.layer_matrix(p + "ffn_up.weight", c.n_embd, c.n_ff, w);
    }
    l.w_down = L.layer_matrix(p + "ffn_down.weight", c.n_ff, c.n_embd, w);
    if (c.post_ffn_norm) l.post_ffn_norm = L.vector(p + "post_ffw_norm.weight", c.n_embd);
  }
  // Decode reads every layer matrix and the output head once; of the embedding only one row.
  w.matrix_bytes = L.bytes - embd_bytes + (w.tied_output ? embd_bytes : 0);
  return w;
}

}  // namespace edgellm::model
