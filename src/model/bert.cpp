#include "model/bert.h"

#include <algorithm>
#include <cmath>

#include "model/weights.h"
#include "util/error.h"

namespace edgellm::model {
namespace {

void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// LayerNorm over n values with a weight and bias (in place allowed). Sums in double: the
// variance of a 384-wide row with one large outlier loses digits in float.
void layernorm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double mean = s / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) s2 += (x[i] - mean) * (x[i] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(s2 / static_cast<double>(n) + eps));
  const float m = static_cast<float>(mean);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

// BERT's GELU is the exact one, x * Phi(x), not the tanh approximation ops::gelu_mul computes.
void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

void add_bias(float* y, const std::vector<float>& b, int64_t rows) {
  const int64_t n = static_cast<int64_t>(b.size());
  for (int64_t r = 0; r < rows; ++r) ops::add_f32(y + r * n, b.data(), y + r * n, n);
}

class Loader {
 public:
  explicit Loader(const io::GgufFile& f) : f_(f) {}
  ops::MatrixView matrix(const std::string& name, int64_t n_in, int64_t n_out) {
    return tensor_matrix(f_, name, n_in, n_out);
  }
  // A layer matrix in the layout the active kernels read fastest (quantized files: `edgellm
  // quantize` works on BERT GGUFs too), the copy kept in `store`.
  ops::MatrixView layer_matrix(const std::string& name, int64_t n_in, int64_t n_out,
                               std::vector<std::unique_ptr<uint8_t[]>>& store) {
    const ops::MatrixView m = matrix(name, n_in, n_out);
    if (!ops::repack_preferred(m.type)) return m;
    store.push_back(std::unique_ptr<uint8_t[]>(new uint8_t[ops::repacked_bytes(m)]));
    return ops::repack(m, store.back().get());
  }
  std::vector<float> vector(const std::string& name, int64_t n) { return tensor_vector(f_, name, n); }

 private:
  const io::GgufFile& f_;
};

int32_t positive(const io::GgufFile& f, const std::string& k, int64_t max) {
  const int64_t v = f.require_int(k);
  if (v <= 0 || v > max)
    throw ModelFormatError(f.path() + ": metadata '" + k + "' = " + std::to_string(v) + " is out of range (1.." +
                           std::to_string(max) + ")");
  return static_cast<int32_t>(v);
}

}  // namespace

bool BertModel::is_bert(const io::GgufFile& file) {
  const auto arch = file.get_string("general.architecture");
  return arch && *arch == "bert";
}

std::unique_ptr<BertModel> BertModel::load(const std::string& path) { return from_file(io::GgufFile::open(path)); }

std::unique_ptr<BertModel> BertModel::from_file(std::unique_ptr<io::GgufFile> file) {
  const io::GgufFile& f = *file;
  if (!is_bert(f)) throw ModelFormatError(f.path() + ": not a BERT model (general.architecture is not \"bert\")");
  std::unique_ptr<BertModel> m(new BertModel());
  BertConfig& c = m->config_;
  c.name = f.get_string("general.name").value_or("bert");
  c.n_layer = positive(f, "bert.block_count", 1024);
  c.n_embd = positive(f, "bert.embedding_length", 1 << 16);
  c.n_head = positive(f, "bert.attention.head_count", 1024);
  c.n_ff = positive(f, "bert.feed_forward_length", 1 << 20);
  c.n_ctx = positive(f, "bert.context_length", 1 << 20);
  if (c.n_embd % c.n_head != 0)
    throw ModelFormatError(f.path() + ": embedding_length is not a multiple of head_count");
  c.head_dim = c.n_embd / c.n_head;
  c.eps = static_cast<float>(f.get_float("bert.attention.layer_norm_epsilon").value_or(1e-12));
  if (!(c.eps > 0 && c.eps < 1)) throw ModelFormatError(f.path() + ": layer_norm_epsilon out of range");
  if (auto causal = f.get_bool("bert.attention.causal"); causal && *causal)
    throw ModelFormatError(f.path() + ": a causal BERT is not a sentence encoder");
  const int64_t pool = f.get_int("bert.pooling_type").value_or(1);
  if (pool != 1 && pool != 2)
    throw ModelFormatError(f.path() + ": pooling_type " + std::to_string(pool) + " is not supported (1 mean, 2 CLS)");
  c.pooling = static_cast<BertPooling>(pool);
  const io::TensorInfo* te = f.find_tensor("token_embd.weight");
  if (!te || te->ne.size() != 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24))
    throw ModelFormatError(f.path() + ": tensor 'token_embd.weight' is missing or malformed");
  c.n_vocab = static_cast<int32_t>(te->ne[1]);
  const io::TensorInfo* tt = f.find_tensor("token_types.weight");
  if (!tt || tt->ne.size() != 2 || tt->ne[1] <= 0 || tt->ne[1] > 64)
    throw ModelFormatError(f.path() + ": tensor 'token_types.weight' is missing or malformed");
  c.n_types = static_cast<int32_t>(tt->ne[1]);

  Loader L(f);
  const int64_t d = c.n_embd, ff = c.n_ff;
  m->token_embd_ = L.matrix("token_embd.weight", d, c.n_vocab);
  m->position_embd_ = L.matrix("position_embd.weight", d, c.n_ctx);
  m->token_types_ = L.matrix("token_types.weight", d, c.n_types);
  m->embd_norm_w_ = L.vector("token_embd_norm.weight", d);
  m->embd_norm_b_ = L.vector("token_embd_norm.bias", d);
  m->layers_.resize(c.n_layer);
  for (int32_t il = 0; il < c.n_layer; ++il) {
    BertLayer& l = m->layers_[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    l.wq = L.layer_matrix(p + "attn_q.weight", d, d, m->repacked_);
    l.wk = L.layer_matrix(p + "attn_k.weight", d, d, m->repacked_);
    l.wv = L.layer_matrix(p + "attn_v.weight", d, d, m->repacked_);
    l.wo = L.layer_matrix(p + "attn_output.weight", d, d, m->repacked_);
    l.bq = L.vector(p + "attn_q.bias", d);
    l.bk = L.vector(p + "attn_k.bias", d);
    l.bv = L.vector(p + "attn_v.bias", d);
    l.bo = L.vector(p + "attn_output.bias", d);
    l.attn_norm_w = L.vector(p + "attn_output_norm.weight", d);
    l.attn_norm_b = L.vector(p + "attn_output_norm.bias", d);
    l.w_up = L.layer_matrix(p + "ffn_up.weight", d, ff, m->repacked_);
    l.b_up = L.vector(p + "ffn_up.bias", ff);
    l.w_down = L.layer_matrix(p + "ffn_down.weight", ff, d, m->repacked_);
    l.b_down = L.vector(p + "ffn_down.bias", d);
    l.out_norm_w = L.vector(p + "layer_output_norm.weight", d);
    l.out_norm_b = L.vector(p + "layer_output_norm.bias", d);
  }
  m->file_ = std::move(file);
  return m;
}

void BertModel::embed(const std::vector<std::vector<int32_t>>& seqs, BertWorkspace& ws, ops::ThreadPool& pool,
                      float* out) const {
  for (const auto& s : seqs) {
    if (s.empty()) throw InvalidArgument("empty sequence");
    if (static_cast<int64_t>(s.size()) > config_.n_ctx)
      throw InvalidArgument("a sequence has " + std::to_string(s.size()) + " tokens; the model takes at most " +
                            std::to_string(config_.n_ctx));
    for (int32_t id : s)
      if (id < 0 || id >= config_.n_vocab)
        throw InvalidArgument("token id " + std::to_string(id) + " outside the vocabulary (0.." +
                              std::to_string(config_.n_vocab - 1) + ")");
  }
  // Passes of whole sequences up to max_batch_tokens() (a longer sequence runs alone): matmuls
  // over many rows run near the kernels' peak; the bound keeps the workspace small.
  size_t first = 0;
  while (first < seqs.size()) {
    size_t last = first;
    int64_t tokens = 0;
    while (last < seqs.size() && (last == first || tokens + static_cast<int64_t>(seqs[last].size()) <= max_batch_tokens()))
      tokens += static_cast<int64_t>(seqs[last++].size());
    run_pass(seqs, first, last, ws, pool, out + first * config_.n_embd);
    first = last;
  }
}

void BertModel::run_pass(const std::vector<std::vector<int32_t>>& seqs, size_t first, size_t last, BertWorkspace& ws,
                         ops::ThreadPool& pool, float* out) const {
  const BertConfig& c = config_;
  const int64_t d = c.n_embd, hd = c.head_dim, ff = c.n_ff;
  std::vector<int64_t> start;  // first row of each sequence, then the total
  int64_t n = 0, longest = 0;
  for (size_t s = first; s < last; ++s) {
    start.push_back(n);
    n += static_cast<int64_t>(seqs[s].size());
    longest = std::max<int64_t>(longest, static_cast<int64_t>(seqs[s].size()));
  }
  start.push_back(n);
  const int64_t n_seq = static_cast<int64_t>(last - first);
  grow(ws.x, n * d);
  grow(ws.q, n * d);
  grow(ws.k, n * d);
  grow(ws.v, n * d);
  grow(ws.attn, n * d);
  grow(ws.proj, n * d);
  grow(ws.up, n * ff);
  grow(ws.scores, static_cast<size_t>(pool.size()) * longest);

  // Embeddings: word + position + token type 0, then LayerNorm.
  std::vector<float> type0(d), pos_row(d);
  ops::dequantize_row(token_types_.type, token_types_.data, type0.data(), d);
  for (int64_t s = 0; s < n_seq; ++s) {
    const auto& ids = seqs[first + s];
    for (int64_t p = 0; p < static_cast<int64_t>(ids.size()); ++p) {
      float* x = &ws.x[(start[s] + p) * d];
      ops::dequantize_row(token_embd_.type, static_cast<const uint8_t*>(token_embd_.data) + ids[p] * token_embd_.row_stride,
                          x, d);
      ops::dequantize_row(position_embd_.type, static_cast<const uint8_t*>(position_embd_.data) + p * position_embd_.row_stride,
                          pos_row.data(), d);
      ops::add_f32(x, pos_row.data(), x, d);
      ops::add_f32(x, type0.data(), x, d);
      layernorm(x, embd_norm_w_.data(), embd_norm_b_.data(), x, d, c.eps);
    }
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (const BertLayer& L : layers_) {
    const ops::MatrixView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {ws.q.data(), ws.k.data(), ws.v.data()};
    ops::matmul_multi(qkv, qkv_out, 3, ws.x.data(), n, pool);
    add_bias(ws.q.data(), L.bq, n);
    add_bias(ws.k.data(), L.bk, n);
    add_bias(ws.v.data(), L.bv, n);
    // Bidirectional: every token of a sequence attends to all tokens of its sequence.
    std::vector<int64_t> seq_of(n);
    for (int64_t s = 0; s < n_seq; ++s)
      for (int64_t t = start[s]; t < start[s + 1]; ++t) seq_of[t] = s;
    const int64_t tasks = n * c.n_head;
    pool.parallel_for(tasks, [&](int64_t b, int64_t e, int thread) {
      float* scores = &ws.scores[static_cast<size_t>(thread) * longest];
      for (int64_t task = b; task < e; ++task) {
        const int64_t t = task / c.n_head, h = task % c.n_head, s = seq_of[t];
        const int64_t base = start[s] * d + h * hd;
        ops::attend_head(&ws.q[t * d + h * hd], &ws.k[base], &ws.v[base], d, start[s + 1] - start[s], hd, scale, 0.0f,
                         scores, &ws.attn[t * d + h * hd]);
      }
    });
    ops::matmul(L.wo, ws.attn.data(), n, ws.proj.data(), pool);
    for (int64_t t = 0; t < n; ++t) {
      float* x = &ws.x[t * d];
      float* p = &ws.proj[t * d];
      ops::add_f32(p, L.bo.data(), p, d);
      ops::add_f32(x, p, x, d);
      layernorm(x, L.attn_norm_w.data(), L.attn_norm_b.data(), x, d, c.eps);
    }
    ops::matmul(L.w_up, ws.x.data(), n, ws.up.data(), pool);
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        float* u = &ws.up[t * ff];
        ops::add_f32(u, L.b_up.data(), u, ff);
        gelu_erf(u, ff);
      }
    });
    ops::matmul(L.w_down, ws.up.data(), n, ws.proj.data(), pool);
    for (int64_t t = 0; t < n; ++t) {
      float* x = &ws.x[t * d];
      float* p = &ws.proj[t * d];
      ops::add_f32(p, L.b_down.data(), p, d);
      ops::add_f32(x, p, x, d);
      layernorm(x, L.out_norm_w.data(), L.out_norm_b.data(), x, d, c.eps);
    }
  }

  // Pooling over each sequence's tokens (all of them are real: no padding here), then unit length.
  for (int64_t s = 0; s < n_seq; ++s) {
    float* o = out + s * d;
    const int64_t len = start[s + 1] - start[s];
    if (c.pooling == BertPooling::Cls) {
      std::copy_n(&ws.x[start[s] * d], d, o);
    } else {
      std::vector<double> sum(d, 0.0);
      for (int64_t t = start[s]; t < start[s + 1]; ++t)
        for (int64_t i = 0; i < d; ++i) sum[i] += ws.x[t * d + i];
      for (int64_t i = 0; i < d; ++i) o[i] = static_cast<float>(sum[i] / static_cast<double>(len));
    }
    double norm = 0;
    for (int64_t i = 0; i < d; ++i) norm += static_cast<double>(o[i]) * o[i];
    norm = std::sqrt(norm);
    if (norm > 0)
      for (int64_t i = 0; i < d; ++i) o[i] = static_cast<float>(o[i] / norm);
  }
}

}  // namespace edgellm::model
