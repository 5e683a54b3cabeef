#include "cli/bench_run.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace edgellm::cli {
namespace {

constexpr int kChunk = 512;  // prompt tokens per forward pass, as in real use

// Feeds tokens [from, to) of one sequence in passes of kChunk; logits for the last one only.
void prefill(const model::Model& m, ops::ThreadPool& pool, model::KvCache* kv, int from, int to,
             model::Workspace& ws, std::vector<float>& logits, std::mt19937& rng) {
  std::uniform_int_distribution<int> tok(0, m.config().n_vocab - 1);
  model::Batch b;
  for (int i = from; i < to; i += kChunk) {
    b.clear();
    for (int j = i; j < std::min(to, i + kChunk); ++j) b.add(tok(rng), j, kv, j == to - 1);
    m.forward(b, ws, pool, logits.data());
  }
}

}  // namespace

MatmulCost matmul_cost(const model::ModelConfig& c) {
  const uint64_t e = static_cast<uint64_t>(c.n_embd);
  const uint64_t per_layer = e * c.q_dim() + 2 * e * c.kv_dim() + static_cast<uint64_t>(c.q_dim()) * e +
                             3 * e * static_cast<uint64_t>(c.n_ff);
  return {per_layer * static_cast<uint64_t>(c.n_layer), e * static_cast<uint64_t>(c.n_vocab)};
}

uint64_t kv_bytes_per_token(const model::ModelConfig& c, int depth, int n_gen, model::KvTypes types) {
  if (n_gen <= 0) return 0;
  uint64_t positions = 0;  // summed over layers and steps
  for (int il = 0; il < c.n_layer; ++il) {
    const bool swa = il < static_cast<int>(c.layer_swa.size()) && c.layer_swa[il] && c.sliding_window > 0;
    for (int i = 0; i < n_gen; ++i) {
      const uint64_t visible = static_cast<uint64_t>(depth) + i + 1;
      positions += swa ? std::min<uint64_t>(visible, static_cast<uint64_t>(c.sliding_window)) : visible;
    }
  }
  // Keys and values, one stored row of kv_dim elements each per position.
  const uint64_t bytes = positions * (io::row_bytes(types.k, c.kv_dim()) + io::row_bytes(types.v, c.kv_dim()));
  return (bytes + n_gen / 2) / static_cast<uint64_t>(n_gen);
}

std::vector<model::KvCache*> DepthCaches::get(int n, ops::ThreadPool& pool, std::mt19937& rng) {
  const auto& c = m_.config();
  while (static_cast<int>(kv_.size()) < n) {
    kv_.push_back(std::make_unique<model::KvCache>(m_.cache_config(types_), std::max(1, capacity_), types_));
    model::KvCache& dst = *kv_.back();
    if (depth_ == 0) continue;
    if (kv_.size() == 1 && random_fill_) {
      // A few random rows, cycled: unit-variance keys and values as the model's are after RoPE.
      constexpr int kRows = 61;
      std::normal_distribution<float> dist(0.f, 1.f);
      std::vector<float> rows(static_cast<size_t>(kRows) * 2 * c.kv_dim());
      for (auto& x : rows) x = dist(rng);
      for (int il = 0; il < c.n_layer; ++il)
        for (int p = 0; p < depth_; ++p) {
          const float* r = &rows[static_cast<size_t>((p + il) % kRows) * 2 * c.kv_dim()];
          dst.write(il, p, r, r + c.kv_dim());
        }
    } else if (kv_.size() == 1) {
      model::Workspace ws;
      std::vector<float> logits(static_cast<size_t>(c.n_vocab));
      prefill(m_, pool, &dst, 0, depth_, ws, logits, rng);
    } else {
      // Further sequences get a copy of the first one's context (same cost to attend).
      dst.copy_prefix(*kv_.front(), depth_);
    }
  }
  std::vector<model::KvCache*> out;
  for (int s = 0; s < n; ++s) {
    kv_[static_cast<size_t>(s)]->set_size(depth_);
    out.push_back(kv_[static_cast<size_t>(s)].get());
  }
  return out;
}

double run_once(const model::Model& m, ops::ThreadPool& pool, DepthCaches& caches, int n_prompt, int n_gen,
                int n_seq, std::mt19937& rng) {
  const auto& c = m.config();
  const std::vector<model::KvCache*> kv = caches.get(n_seq, pool, rng);
  const int d = caches.depth();
  model::Workspace ws;
  std::vector<float> logits(static_cast<size_t>(c.n_vocab) * n_seq);
  std::uniform_int_distribution<int> tok(0, c.n_vocab - 1);
  model::Batch b;
  const auto t0 = std::chrono::steady_clock::now();
  if (n_prompt > 0) prefill(m, pool, kv[0], d, d + n_prompt, ws, logits, rng);
  for (int i = 0; i < n_gen; ++i) {
    b.clear();
    for (int s = 0; s < n_seq; ++s) b.add(tok(rng), d + n_prompt + i, kv[static_cast<size_t>(s)], true);
    m.forward(b, ws, pool, logits.data());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return (n_prompt > 0 ? n_prompt : static_cast<double>(n_gen) * n_seq) / s;
}

double run_verify(const model::Model& m, ops::ThreadPool& pool, DepthCaches& caches, int n_tokens, int n_passes,
                  std::mt19937& rng) {
  const auto& c = m.config();
  model::KvCache* kv = caches.get(1, pool, rng)[0];
  const int d = caches.depth();
  model::Workspace ws;
  std::vector<float> logits(static_cast<size_t>(c.n_vocab) * n_tokens);
  std::uniform_int_distribution<int> tok(0, c.n_vocab - 1);
  model::Batch b;
  const auto t0 = std::chrono::steady_clock::now();
  for (int p = 0; p < n_passes; ++p) {
    b.clear();
    for (int i = 0; i < n_tokens; ++i) b.add(tok(rng), d + i, kv, true);
    m.forward(b, ws, pool, logits.data());
    kv->truncate(d);  // every guess rejected: the next pass drafts from the same position
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(n_tokens) * n_passes / s;
}

}  // namespace edgellm::cli
