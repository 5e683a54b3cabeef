#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "model/key_offset.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::model {
namespace {

// Attention multiply-adds below which one thread runs it (~1 us of work at AVX2 speed, about
// what a region costs to start and join while the pool's workers spin between regions).
// Decode at a few hundred positions is 10-20 us of attention per layer: run on the caller
// alone it left the other core idle for ~5% of a 2-thread decode.
constexpr int64_t kSerialAttentionWork = int64_t{1} << 15;

void grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Applies fn to each of n rows of width `width` in `data`, in parallel.
template <typename Fn>
void for_rows(ops::ThreadPool& pool, int64_t n, Fn&& fn) {
  if (n == 1) {
    fn(0);
    return;
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

// Per-token element-wise work (norms, RoPE, residual adds, the MLP's gating) of a pass with
// many tokens, split over the pool: on the caller alone it kept the other threads waiting for
// ~4% of a 2-thread prefill. Each token's arithmetic is unchanged, so results are bitwise equal.
// Below kParallelTokens a region's start-up costs more than the work.
constexpr int64_t kParallelTokens = 16;
template <class Fn>
void for_tokens(ops::ThreadPool& pool, int64_t n, Fn&& fn) {
  if (n < kParallelTokens || pool.size() == 1) {
    for (int64_t t = 0; t < n; ++t) fn(t);
    return;
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(i);
  });
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path) {
  return from_file(io::GgufFile::open(path));
}

std::unique_ptr<Model> Model::from_file(std::unique_ptr<io::GgufFile> file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  m->config_ = config_from_gguf(*m->file_);
  m->weights_ = load_weights(*m->file_, m->config_);
  if (m->config_.qkv_bias) {
    std::vector<std::vector<float>> bk;
    for (const LayerWeights& L : m->weights_.layers) bk.push_back(L.bk);
    m->wants_key_offset_ = !key_offsets(m->config_, bk).empty();
  }
  return m;
}

const ModelConfig& Model::cache_config(KvTypes types) const {
  if (!wants_key_offset_ || io::traits(types.k).block_elems == 1) return config_;
  // Deferred to the first block-type key cache: the pass costs ~0.5 s of one core on the 0.5B.
  std::call_once(keys_once_, [this] {
    ModelConfig c = config_;
    const KeyCalibration kc = calibrate_keys();
    c.key_offset = kc.offset;
    c.key_scale = kc.scale;
    keyed_config_ = std::move(c);
  });
  return keyed_config_;
}

KeyCalibration Model::calibrate_keys() const {
  // Fixed pseudo-random tokens (the same on every load, so a saved session's rows stay valid),
  // through an f32 cache (config_ has no offset); position 0 is left out: the first token's key
  // is an outlier of its own (attention sink) and no later key looks like it. Keys of a passage
  // of real text (100 or 260 tokens) fitted the q8_0 cache no better (0.5B mean KL 0.00181 and
  // 0.00169 against 0.00160) and cost 3-8x the time.
  const ModelConfig& c = config_;
  const int32_t n = kCalibrationTokens + 1, kvd = c.kv_dim(), hd = c.head_dim;
  KvCache kv(c, n);
  Batch b;
  uint32_t state = 0x9E3779B9u;
  for (int32_t p = 0; p < n; ++p) {
    state = state * 1664525u + 1013904223u;
    b.add(static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(c.n_vocab)), p, &kv, false);
  }
  Workspace ws;
  ops::ThreadPool pool(1);
  forward(b, ws, pool, nullptr);
  // Undo RoPE (a rotation by -p with the inverse magnitude factor) to get the keys before it.
  std::vector<std::vector<float>> keys(static_cast<size_t>(c.n_layer));
  std::vector<float> cs(static_cast<size_t>(std::max(c.n_rot, 2)));
  for (int32_t il = 0; il < c.n_layer; ++il) {
    std::vector<float>& k = keys[static_cast<size_t>(il)];
    k.resize(static_cast<size_t>(kCalibrationTokens) * kvd);
    for (int32_t p = 1; p < n; ++p) {
      float* row = &k[static_cast<size_t>(p - 1) * kvd];
      kv.read_k(il, p, reinterpret_cast<uint8_t*>(row));
      ops::rope_cos_sin(c.n_rot, -static_cast<int64_t>(p), c.rope_base_for(il), c.rope_freq_scale, cs.data(),
                        c.rope_factors_for(n), 1.0f / c.rope_attn_factor);
      for (int32_t h = 0; h < c.n_head_kv; ++h) ops::rope_apply(row + h * hd, hd, c.n_rot, cs.data(), c.rope_neox);
    }
  }
  return model::calibrate_keys(c, keys, kCalibrationTokens);
}

void Model::validate(const Batch& b) const {
  const size_t n = b.tokens.size();
  if (n == 0) throw InvalidArgument("empty batch");
  if (b.pos.size() != n || b.cache.size() != n || b.lora.size() != n)
    throw InvalidArgument("batch arrays differ in length");
  for (size_t i = 0; i < n; ++i) {
    if (!b.lora[i] || (i > 0 && b.lora[i] == b.lora[i - 1])) continue;
    for (const LoraEntry& e : b.lora[i]->entries) {
      if (!e.adapter) throw InvalidArgument("LoRA set with a null adapter");
      if (!e.adapter->fits(config_))
        throw InvalidArgument("LoRA adapter " + e.adapter->path() + " was loaded for another model");
      if (!std::isfinite(e.scale)) throw InvalidArgument("LoRA scale is not a finite number");
    }
  }
  // Positions of each sequence must continue its cache without gaps.
  std::map<const KvCache*, int32_t> next;
  for (size_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= config_.n_vocab)
      throw InvalidArgument("token id " + std::to_string(b.tokens[i]) + " outside the vocabulary (0.." +
                            std::to_string(config_.n_vocab - 1) + ")");
    KvCache* c = b.cache[i];
    if (!c) throw InvalidArgument("batch token without a cache");
    auto [it, inserted] = next.try_emplace(c, c->size());
    if (b.pos[i] != it->second)
      throw InvalidArgument("position " + std::to_string(b.pos[i]) + " does not continue the sequence (expected " +
                            std::to_string(it->second) + ")");
    if (b.pos[i] >= c->n_ctx())
      throw InvalidArgument("context full: position " + std::to_string(b.pos[i]) + " exceeds the context size " +
                            std::to_string(c->n_ctx()));
    ++it->second;
  }
  for (int32_t r : b.logit_rows)
    if (r < 0 || static_cast<size_t>(r) >= n) throw InvalidArgument("logit row out of range");
}

bool Model::has_lora(const Batch& b) {
  return std::any_of(b.lora.begin(), b.lora.end(), [](const LoraSet* s) { return s != nullptr; });
}

void Model::forward(const Batch& b, Workspace& ws, ops::ThreadPool& pool, float* logits, float* hidden) const {
  validate(b);
  // Low-rank updates beside the base matmuls (lora.h): y += scale·B·(A·x) for adapted tokens.
  const bool lora = has_lora(b);
  auto adapt = [&](int32_t il, LoraTarget tg, const std::vector<float>& x, int64_t n_in, std::vector<float>& y,
                   int64_t n_out) {
    if (lora) apply_lora(b.lora.data(), static_cast<int64_t>(b.size()), il, tg, x.data(), n_in, y.data(), n_out, pool, ws.lora);
  };
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(b.size());
  const int64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim;
  grow(ws.x, n * d);       // residual stream [n][d]
  grow(ws.xn, n * d);      // normed input of a sub-layer [n][d]
  grow(ws.q, n * qd);      // [n][n_head][hd]
  grow(ws.k, n * kvd);     // [n][n_head_kv][hd]
  grow(ws.v, n * kvd);     // [n][n_head_kv][hd]
  grow(ws.attn, n * qd);   // attention output [n][n_head][hd]
  grow(ws.proj, n * d);    // sub-layer output [n][d]
  grow(ws.gate, n * c.n_ff);  // [n][n_ff]
  grow(ws.up, n * c.n_ff);    // [n][n_ff]
  grow(ws.rope_cs, n * std::max<int64_t>(c.n_rot, 1));
  ws.rope_cs_base = 0.f;  // positions differ from the last pass

  // Embedding lookup: one dequantized row per token.
  for_rows(pool, n, [&](int64_t t) {
    const auto& E = weights_.token_embd;
    const auto* row = static_cast<const uint8_t*>(E.data) + static_cast<size_t>(b.tokens[t]) * E.row_stride;
    ops::dequantize_row(E.type, row, &ws.x[t * d], d);
    if (c.embd_scale != 1.0f) ops::scale_f32(&ws.x[t * d], c.embd_scale, d);
  });

  for (int32_t il = 0; il < c.n_layer; ++il) {
    const LayerWeights& L = weights_.layers[il];
    // --- attention sub-layer ---
    for_tokens(pool, n, [&](int64_t t) { ops::rmsnorm(&ws.x[t * d], L.attn_norm.data(), &ws.xn[t * d], d, c.norm_eps); });
    const ops::MatrixView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {ws.q.data(), ws.k.data(), ws.v.data()};
    ops::matmul_multi(qkv, qkv_out, 3, ws.xn.data(), n, pool);
    adapt(il, LoraTarget::Q, ws.xn, d, ws.q, qd);
    adapt(il, LoraTarget::K, ws.xn, d, ws.k, kvd);
    adapt(il, LoraTarget::V, ws.xn, d, ws.v, kvd);
    const float rope_base = c.rope_base_for(il);
    if (ws.rope_cs_base != rope_base) {
      // Angles depend only on position and base: computed once per pass (per base), not per
      // head and layer (that sin/cos was ~2% of decode and 2.5% of prefill).
      for (int64_t t = 0; t < n; ++t)
        ops::rope_cos_sin(c.n_rot, b.pos[t], rope_base, c.rope_freq_scale, &ws.rope_cs[t * c.n_rot],
                          c.rope_factors_for(b.cache[t]->n_ctx()), c.rope_attn_factor);
      ws.rope_cs_base = rope_base;
    }
    for_tokens(pool, n, [&](int64_t t) {
      const float* cs = &ws.rope_cs[t * c.n_rot];
      float* q = &ws.q[t * qd];
      float* k = &ws.k[t * kvd];
      if (c.qkv_bias) {
        ops::add_f32(q, L.bq.data(), q, qd);
        ops::add_f32(k, L.bk.data(), k, kvd);
        ops::add_f32(&ws.v[t * kvd], L.bv.data(), &ws.v[t * kvd], kvd);
      }
      for (int32_t h = 0; h < c.n_head; ++h) {
        if (c.qk_norm) ops::rmsnorm(q + h * hd, L.q_norm.data(), q + h * hd, hd, c.norm_eps);
        ops::rope_apply(q + h * hd, hd, c.n_rot, cs, c.rope_neox);
      }
      for (int32_t h = 0; h < c.n_head_kv; ++h) {
        if (c.qk_norm) ops::rmsnorm(k + h * hd, L.k_norm.data(), k + h * hd, hd, c.norm_eps);
        ops::rope_apply(k + h * hd, hd, c.n_rot, cs, c.rope_neox);
      }
    });
    // On the caller: a cache's write uses its own scratch row.
    for (int64_t t = 0; t < n; ++t) b.cache[t]->write(il, b.pos[t], &ws.k[t * kvd], &ws.v[t * kvd]);
    attention(b, il, ws, pool);
    ops::matmul(L.wo, ws.attn.data(), n, ws.proj.data(), pool);
    adapt(il, LoraTarget::O, ws.attn, qd, ws.proj, d);
    for_tokens(pool, n, [&](int64_t t) {
      float* p = &ws.proj[t * d];
      if (c.post_attn_norm) ops::rmsnorm(p, L.post_attn_norm.data(), p, d, c.norm_eps);
      if (c.residual_scale != 1.0f) ops::scale_f32(p, c.residual_scale, d);
      ops::add_f32(&ws.x[t * d], p, &ws.x[t * d], d);
      ops::rmsnorm(&ws.x[t * d], L.ffn_norm.data(), &ws.xn[t * d], d, c.norm_eps);
    });
    // --- feed-forward sub-layer ---
    const ops::MatrixView gu[2] = {L.w_gate, L.w_up};
    float* const gu_out[2] = {ws.gate.data(), ws.up.data()};
    ops::matmul_multi(gu, gu_out, 2, ws.xn.data(), n, pool);
    const int64_t ff = c.n_ff;
    adapt(il, LoraTarget::Gate, ws.xn, d, ws.gate, ff);
    adapt(il, LoraTarget::Up, ws.xn, d, ws.up, ff);
    for_tokens(pool, n, [&](int64_t t) {
      float* g = &ws.gate[t * ff];
      if (c.mlp == MlpKind::SwiGLU) ops::silu_mul(g, &ws.up[t * ff], g, ff);
      else ops::gelu_mul(g, &ws.up[t * ff], g, ff);
    });
    ops::matmul(L.w_down, ws.gate.data(), n, ws.proj.data(), pool);
    adapt(il, LoraTarget::Down, ws.gate, ff, ws.proj, d);
    for_tokens(pool, n, [&](int64_t t) {
      float* p = &ws.proj[t * d];
      if (c.post_ffn_norm) ops::rmsnorm(p, L.post_ffn_norm.data(), p, d, c.norm_eps);
      if (c.residual_scale != 1.0f) ops::scale_f32(p, c.residual_scale, d);
      ops::add_f32(&ws.x[t * d], p, &ws.x[t * d], d);
    });
  }
  // Sequence lengths advance only after the whole pass succeeded.
  for (int64_t t = 0; t < n; ++t) b.cache[t]->set_size(std::max(b.cache[t]->size(), b.pos[t] + 1));

  // Output head only on the rows whose logits are wanted.
  const int64_t nr = static_cast<int64_t>(b.logit_rows.size());
  if (nr == 0) return;
  grow(ws.rows, nr * d);
  for (int64_t r = 0; r < nr; ++r)
    ops::rmsnorm(&ws.x[b.logit_rows[r] * d], weights_.output_norm.data(), &ws.rows[r * d], d, c.norm_eps);
  if (hidden) std::copy_n(ws.rows.data(), nr * d, hidden);
  if (!logits) return;
  // A prefix of the head's rows is a view of it: repacked groups (4 or 8 rows) are contiguous.
  ops::MatrixView head = weights_.output;
  if (b.head_rows > 0 && b.head_rows / 8 * 8 < head.n_out) head.n_out = std::max<int64_t>(8, b.head_rows / 8 * 8);
  const int64_t nv = head.n_out;
  ops::matmul(head, ws.rows.data(), nr, logits, pool);
  if (c.logit_scale != 1.0f) ops::scale_f32(logits, 1.0f / c.logit_scale, nr * nv);
  if (c.final_softcap > 0) {
    const float cap = c.final_softcap;
    for (int64_t i = 0; i < nr * nv; ++i) logits[i] = cap * std::tanh(logits[i] / cap);
  }
  if (nv == c.n_vocab) return;
  // Rows [nr][nv] spread to [nr][n_vocab], last row first (row r moves up, never onto rows below it).
  for (int64_t r = nr - 1; r >= 0; --r) {
    float* row = logits + r * c.n_vocab;
    std::memmove(row, logits + r * nv, static_cast<size_t>(nv) * sizeof(float));
    std::fill(row + nv, row + c.n_vocab, -std::numeric_limits<float>::infinity());
  }
}

void Model::attention(const Batch& b, int32_t il, Workspace& ws, ops::ThreadPool& pool) const {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(b.size());
  const int64_t hd = c.head_dim, qd = c.q_dim();
  const int32_t group = c.n_head / c.n_head_kv;
  int32_t max_ctx = 0;
  for (const KvCache* kv : b.cache) max_ctx = std::max(max_ctx, kv->n_ctx());
  // Scores of one task: the query heads of one KV head.
  const size_t task_scores = static_cast<size_t>(group) * max_ctx;
  grow(ws.scores, static_cast<size_t>(pool.size()) * task_scores);
  grow(ws.qs, static_cast<size_t>(pool.size()) * group * hd);
  const bool swa = c.layer_swa[il] && c.sliding_window > 0;

  // One task per (token, KV head): all its query heads in one pass over the visible positions
  // (grouped-query attention reads each cached row once, not once per query head).
  auto run = [&](int64_t begin, int64_t end, int thread) {
    float* scores = &ws.scores[static_cast<size_t>(thread) * task_scores];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / c.n_head_kv;
      const int32_t kvh = static_cast<int32_t>(task % c.n_head_kv);
      const KvCache& kv = *b.cache[t];
      const int32_t p = b.pos[t];
      const int32_t lo = swa ? std::max(0, p - c.sliding_window + 1) : 0;
      const int64_t h0 = static_cast<int64_t>(kvh) * group;
      const ops::KvRows k{kv.types().k, kv.k(il, kvh, lo), kv.k_head_bytes()};
      const ops::KvRows v{kv.types().v, kv.v(il, kvh, lo), kv.v_head_bytes()};
      const float* q = &ws.q[t * qd + h0 * hd];
      if (const float* s = kv.key_scale(il)) {  // stored keys are divided by s (kv_cache.h)
        float* qs = &ws.qs[static_cast<size_t>(thread) * group * hd];
        const float* sh = s + static_cast<int64_t>(kvh) * hd;
        for (int64_t i = 0; i < group * hd; ++i) qs[i] = q[i] * sh[i % hd];
        q = qs;
      }
      ops::attend_group_kv(q, group, k, v, p - lo + 1, hd, c.attn_scale, c.attn_softcap,
                           scores, &ws.attn[t * qd + h0 * hd]);
    }
  };
  // Multiply-adds of the whole call; below the threshold one thread finishes sooner than a
  // parallel region can start and join (decode at short contexts: one region fewer per layer).
  int64_t work = 0;
  for (int64_t t = 0; t < n; ++t) work += static_cast<int64_t>(b.pos[t] + 1) * hd * c.n_head * 2;
  const int64_t tasks = n * c.n_head_kv;
  if (work < kSerialAttentionWork || pool.size() == 1) {
    run(0, tasks, 0);
    return;
  }
  // Prefill: later tokens see more positions, so cost grows along the task list. Many small
  // chunks, the costliest claimed first, keep threads finishing together (with 4 chunks per
  // thread the last chunk alone held a quarter of the work).
  const int64_t nc = std::min<int64_t>(tasks, static_cast<int64_t>(pool.size()) * 16);
  pool.run_chunks(nc, [&](int64_t chunk, int thread) {
    const int64_t k = nc - 1 - chunk;
    run(tasks * k / nc, tasks * (k + 1) / nc, thread);
  });
}

}  // namespace edgellm::model
