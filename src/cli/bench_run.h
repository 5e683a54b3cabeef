#pragma once
// The measured part of `edgellm bench`: timed prefill/decode runs at a cache depth, and what one
// token costs the machine (weight and KV-cache bytes read, int8 multiply-adds of the matmuls)
// so the figures can be set against the memory roofline and the compute peak.
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "model/model.h"
#include "ops/thread_pool.h"

namespace edgellm::cli {

// Multiply-adds of the weight matmuls: every layer's projections per token, the output head
// per token whose logits are computed (attention's q.k and p.v are not weight matmuls).
struct MatmulCost {
  uint64_t layer_macs_per_token = 0;
  uint64_t output_macs_per_row = 0;
};
MatmulCost matmul_cost(const model::ModelConfig& c);

// Bytes of keys and values one decode step reads, averaged over `n_gen` steps that start with
// `depth` positions in the cache (step i attends depth + i + 1 positions, fewer in
// sliding-window layers), as stored in the cache's types.
uint64_t kv_bytes_per_token(const model::ModelConfig& c, int depth, int n_gen, model::KvTypes types = {});

// Caches holding `depth` positions of random tokens, filled once (untimed) and rewound to
// `depth` before every timed run, so repetitions pay for the fill only once. random_fill:
// random key and value rows written straight into the cache instead of a prefill (decode reads
// and computes the same bytes; a 16K-token prefill of a 1.5B model takes many minutes).
class DepthCaches {
 public:
  DepthCaches(const model::Model& m, int depth, int capacity, model::KvTypes types = {}, bool random_fill = false)
      : m_(m), depth_(depth), capacity_(capacity), types_(types), random_fill_(random_fill) {}
  // The first n caches, filled to the depth and rewound.
  std::vector<model::KvCache*> get(int n, ops::ThreadPool& pool, std::mt19937& rng);
  int depth() const { return depth_; }

 private:
  const model::Model& m_;
  int depth_, capacity_;
  model::KvTypes types_;
  bool random_fill_;
  std::vector<std::unique_ptr<model::KvCache>> kv_;
};

// Tokens/s of one run after the caches' depth: n_prompt tokens in batched passes (pp) or n_gen
// decode steps (tg), logits computed as in real use. With n_seq > 1 each decode step is one
// pass over n_seq independent sequences, as the server's continuous batching runs them; the
// figure is then the aggregate over all sequences.
double run_once(const model::Model& m, ops::ThreadPool& pool, DepthCaches& caches, int n_prompt, int n_gen,
                int n_seq, std::mt19937& rng);

// Tokens/s of `n_passes` verification passes of speculative decoding after the caches' depth:
// each pass runs n_tokens tokens of one sequence with every row's logits (a drafted token's row
// is judged) and the cache is rolled back to the depth after it. Prefill (pp) computes the last
// row's logits only and decode (tg) one token per pass, so neither shows what a k-token draft
// costs; t/s of vN against v1 does (a pass of N costs N * t/s(v1) / t/s(vN) one-token passes).
double run_verify(const model::Model& m, ops::ThreadPool& pool, DepthCaches& caches, int n_tokens, int n_passes,
                  std::mt19937& rng);

}  // namespace edgellm::cli
