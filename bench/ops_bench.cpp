// Kernel throughput: weight bytes streamed per second by matmul for every format, next to a
// plain memory read loop (the decode roofline), with 1 and 2 threads; plus SmolLM2-135M-
// shaped decode (all 30 layers' matrices, one token) and prefill (64 tokens) passes; and
// grouped attention at depth, one KV head (in cache) and a whole model's layers (from memory).
// Run: bench_ops [--benchmark_filter=...]; EDGELLM_ISA=avx2 to pin the instruction set.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <vector>

#include <sys/mman.h>

#include <cstdlib>

#include "hwy/aligned_allocator.h"
#include "io/tensor_type.h"
#include "ops/kernel_table.h"
#include "ops/ops.h"

namespace {
using edgellm::io::TensorType;
namespace ops = edgellm::ops;

const TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                             TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                             TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

// A weight matrix of real quantized rows: 64 distinct rows quantized from random data, tiled
// (content does not change speed; quantizing 100 MB with the scalar quantizer would).
struct Matrix {
  Matrix(TensorType t, int64_t n_in, int64_t n_out) : rb(edgellm::io::row_bytes(t, n_in)) {
    data = hwy::AllocateAligned<uint8_t>(rb * n_out);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> x(n_in);
    const int64_t distinct = std::min<int64_t>(64, n_out);
    for (int64_t o = 0; o < distinct; ++o) {
      for (float& v : x) v = u(rng);
      ops::quantize_row(t, x.data(), data.get() + o * rb, n_in);
    }
    for (int64_t o = distinct; o < n_out; ++o) std::memcpy(data.get() + o * rb, data.get() + (o % distinct) * rb, rb);
    view = {t, data.get(), n_in, n_out, rb};
  }
  size_t rb;
  hwy::AlignedFreeUniquePtr<uint8_t[]> data;
  ops::MatrixView view;
  size_t bytes() const { return rb * view.n_out; }
};

std::vector<float> random_vec(size_t n) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& f : v) f = u(rng);
  return v;
}

constexpr size_t kBigBytes = size_t{128} << 20;  // well past the 32 MiB L3

// Memory read loop over 128 MiB split across the pool: the bandwidth a decode can reach.
void BM_ReadLoop(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ops::ThreadPool pool(threads);
  const size_t n = kBigBytes / sizeof(float);
  auto buf = hwy::AllocateAligned<float>(n);
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 7);
  std::vector<float> partial(threads);
  for (auto _ : state) {
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int t) {
      // dot with itself of 8 independent lanes: compiles to a vector load + add stream.
      partial[t] = ops::dot_f32(buf.get() + b, buf.get() + b, e - b);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBigBytes));
}
BENCHMARK(BM_ReadLoop)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// One 1536-wide matrix of ~128 MiB, one token: pure weight streaming.
void BM_MatmulDecode(benchmark::State& state) {
  const TensorType t = kTypes[state.range(0)];
  const int threads = static_cast<int>(state.range(1));
  const int64_t n_in = 1536;
  const int64_t n_out = static_cast<int64_t>(kBigBytes / edgellm::io::row_bytes(t, n_in));
  Matrix W(t, n_in, n_out);
  ops::ThreadPool pool(threads);
  auto x = random_vec(n_in);
  std::vector<float> y(n_out);
  for (auto _ : state) ops::matmul(W.view, x.data(), 1, y.data(), pool);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * W.bytes()));
  state.SetLabel(std::string(edgellm::io::type_name(t)) + " " + ops::active_isa());
}

// The same streaming product with the matrix repacked as a model loads it (K8 for Q4_K / Q6_K, X4
// for the 32-element formats) and 1-16 tokens: decode and speculative verification passes, where
// the weights come from memory once per pass. time(T) / time(1) - 1 over T - 1 is the verify cost
// of one more token (wall time: run it under the measuring lock).
void BM_MatmulStreamPacked(benchmark::State& state) {
  const TensorType t = kTypes[state.range(0)];
  const int threads = static_cast<int>(state.range(1));
  const int64_t n_tok = state.range(2);
  // Fourth argument: row length (default 1536; 8960 is the 1.5B's ffn_down, whose 8 tokens'
  // activations no longer fit L1).
  const int64_t n_in = state.range(3) ? state.range(3) : 1536;
  const int64_t n_out = static_cast<int64_t>(kBigBytes / edgellm::io::row_bytes(t, n_in)) & ~int64_t{7};
  Matrix W(t, n_in, n_out);
  std::vector<uint8_t> packed;
  const ops::MatrixView view = ops::repack(W.view, packed);
  ops::ThreadPool pool(threads);
  auto x = random_vec(n_in * n_tok);
  std::vector<float> y(n_out * n_tok);
  for (auto _ : state) ops::matmul(view, x.data(), n_tok, y.data(), pool);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * W.bytes()));
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(n_in * n_out * n_tok),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(edgellm::io::type_name(t)) + " packed " + ops::active_isa());
}
void StreamPackedArgs(benchmark::internal::Benchmark* b) {
  for (int ti : {4, 8, 10})  // Q4_0, Q4_K, Q6_K
    for (int th : {1, 2})
      for (int nt : {1, 2, 3, 4, 5, 6, 8, 9, 12, 16}) b->Args({ti, th, nt, 0});
  for (int ti : {8, 10})
    for (int th : {1, 2})
      for (int nt : {1, 4, 8}) b->Args({ti, th, nt, 8960});
  // A prefill chunk of 128 tokens (MAC/s against BM_K8Tiles in L2).
  for (int ti : {8, 10})
    for (int th : {1, 2})
      for (int n_in : {0, 8960}) b->Args({ti, th, 128, n_in});
}

// The same product on a 256 KiB matrix that stays in L2: the kernel's arithmetic ceiling.
// Decode can only reach the memory roofline if this is well above the read bandwidth.
// Second argument 1: the matrix repacked (X4: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; K8: Q4_K, Q6_K).
// Third argument: tokens (1 = decode; more = a prefill tile, reported per weight byte read once).
void BM_MatmulCached(benchmark::State& state) {
  const TensorType t = kTypes[state.range(0)];
  const bool x4 = state.range(1) != 0;
  const int64_t n_tok = state.range(2);
  const int64_t n_in = state.range(3) ? state.range(3) : 1536;  // as BM_MatmulStreamPacked
  const int64_t n_out = static_cast<int64_t>((size_t{256} << 10) / edgellm::io::row_bytes(t, n_in)) & ~int64_t{3};
  Matrix W(t, n_in, n_out);
  std::vector<uint8_t> packed;
  const ops::MatrixView view = x4 ? ops::repack(W.view, packed) : W.view;
  ops::ThreadPool pool(1);
  auto x = random_vec(n_in * n_tok);
  std::vector<float> y(n_out * n_tok);
  for (auto _ : state) ops::matmul(view, x.data(), n_tok, y.data(), pool);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * W.bytes()));
  // Multiply-adds per second (n_in x n_out x tokens): against the machine's int8 peak in prefill.
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(n_in * n_out * n_tok),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(edgellm::io::type_name(t)) + (x4 ? " packed " : " ") + ops::active_isa());
}
void CachedArgs(benchmark::internal::Benchmark* b) {
  for (int ti = 3; ti <= 10; ++ti) b->Args({ti, 0, 1, 0});
  for (int ti : {3, 4, 5, 6, 7, 8, 10}) b->Args({ti, 1, 1, 0});
  for (int ti : {4, 8, 10}) b->Args({ti, 0, 64, 0}), b->Args({ti, 1, 64, 0});
  // K8 at the small batches of speculative verification and batched decode: time(T) / time(1)
  // - 1 over T - 1 is the verify cost of one more token when the weights are in cache (CPU time,
  // so a busy machine shifts it less than the wall-clock figures of `edgellm bench -p 1,2,...`).
  for (int ti : {8, 10})
    for (int nt : {2, 3, 4, 5, 6, 8, 9, 12, 16}) b->Args({ti, 1, nt, 0});
  for (int ti : {8, 10})
    for (int nt : {1, 4, 8, 16}) b->Args({ti, 1, nt, 8960});
}

// The K8 tiles alone (Q4_K / Q6_K repacked, one thread, CPU time): the tokens' activations are
// quantized once outside the timed loop, which calls the active table's K8 kernel over all rows,
// so long rows are not dominated by QuantizeQ8KA as in BM_MatmulCached (at 8960 wide its 256 KiB
// matrix has 52 rows and quantizing 8 tokens is half the time). Arguments: type, tokens, row
// length, matrix KiB (kept in L2 up to ~768 KiB with the activations).
void BM_K8Tiles(benchmark::State& state) {
  const TensorType t = kTypes[state.range(0)];
  const int64_t n_tok = state.range(1), n_in = state.range(2);
  const int64_t n_out =
      static_cast<int64_t>((static_cast<size_t>(state.range(3)) << 10) / edgellm::io::row_bytes(t, n_in)) & ~int64_t{15};
  Matrix W(t, n_in, n_out);
  std::vector<uint8_t> packed;
  const ops::MatrixView view = ops::repack(W.view, packed);
  const ops::KernelTable& K = ops::active_kernels();
  auto x = random_vec(n_in * n_tok);
  const size_t stride = static_cast<size_t>(n_in / 256) * sizeof(ops::BlockQ8_KA);
  std::vector<uint8_t> act(stride * n_tok);
  for (int64_t k = 0; k < n_tok; ++k)
    K.quantize_q8ka(x.data() + k * n_in, n_in, reinterpret_cast<ops::BlockQ8_KA*>(act.data() + k * stride));
  std::vector<float> y(n_out * n_tok);
  const ops::GemvFn fn = K.gemv_k8[t == TensorType::Q6_K ? 1 : 0];
  for (auto _ : state) {
    fn(packed.data(), view.row_stride, n_in, 0, n_out, act.data(), stride, n_tok, y.data(), n_out);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(n_in * n_out * n_tok),
                                               benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(edgellm::io::type_name(t)) + " packed " + ops::active_isa());
}
void K8TileArgs(benchmark::internal::Benchmark* b) {
  for (int ti : {8, 10})
    for (int nt : {1, 4, 8, 16})
      for (int n_in : {1536, 8960}) b->Args({ti, nt, n_in, 256});
}
BENCHMARK(BM_K8Tiles)->Apply(K8TileArgs)->Unit(benchmark::kMicrosecond);

// SmolLM2-135M matrices (30 layers: q 576x576, k/v 192x576, o 576x576, gate/up 1536x576,
// down 576x1536), with matmul_multi for q/k/v and gate/up as the model runs them.
// n_tokens = 1 is decode; 64 is a prefill chunk (reported as tokens/s of matmul work).
struct Layer {
  std::unique_ptr<Matrix> q, k, v, o, gate, up, down;
};
void BM_SmolLMLayers(benchmark::State& state) {
  const TensorType t = kTypes[state.range(0)];
  const int threads = static_cast<int>(state.range(1));
  const int64_t n_tok = state.range(2);
  const int64_t d = 576, kv = 192, ff = 1536;
  std::vector<Layer> layers(30);
  size_t bytes = 0;
  for (Layer& L : layers) {
    L.q = std::make_unique<Matrix>(t, d, d);
    L.k = std::make_unique<Matrix>(t, d, kv);
    L.v = std::make_unique<Matrix>(t, d, kv);
    L.o = std::make_unique<Matrix>(t, d, d);
    L.gate = std::make_unique<Matrix>(t, d, ff);
    L.up = std::make_unique<Matrix>(t, d, ff);
    L.down = std::make_unique<Matrix>(t, ff, d);
    bytes += L.q->bytes() + L.k->bytes() + L.v->bytes() + L.o->bytes() + L.gate->bytes() + L.up->bytes() +
             L.down->bytes();
  }
  ops::ThreadPool pool(threads);
  auto x = random_vec(ff * n_tok);
  std::vector<float> q(d * n_tok), k(kv * n_tok), v(kv * n_tok), o(d * n_tok), g(ff * n_tok), u(ff * n_tok);
  const uint64_t r0 = pool.regions();
  for (auto _ : state) {
    for (Layer& L : layers) {
      const ops::MatrixView qkv[3] = {L.q->view, L.k->view, L.v->view};
      float* qkv_out[3] = {q.data(), k.data(), v.data()};
      ops::matmul_multi(qkv, qkv_out, 3, x.data(), n_tok, pool);
      ops::matmul(L.o->view, q.data(), n_tok, o.data(), pool);
      const ops::MatrixView gu[2] = {L.gate->view, L.up->view};
      float* gu_out[2] = {g.data(), u.data()};
      ops::matmul_multi(gu, gu_out, 2, o.data(), n_tok, pool);
      ops::matmul(L.down->view, g.data(), n_tok, o.data(), pool);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n_tok), benchmark::Counter::kIsRate);
  state.counters["regions/iter"] =
      static_cast<double>(pool.regions() - r0) / static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.SetLabel(std::string(edgellm::io::type_name(t)) + " " + ops::active_isa() + " " +
                 std::to_string(bytes >> 20) + " MiB");
}

// Bytes 2 MiB-aligned and, with huge, advised for transparent huge pages (as model::PageArena
// does for weights; the engine's KV cache is plain new[]).
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
std::unique_ptr<uint8_t[], FreeDeleter> AllocateKv(size_t bytes, bool huge) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(kHuge, size));
  if (!p) throw std::bad_alloc();
  if (huge) madvise(p, size, MADV_HUGEPAGE);
  return std::unique_ptr<uint8_t[], FreeDeleter>(p);
}

// KV rows of a cache shaped as Qwen2.5's (2 KV heads per row, K and V each their own buffer):
// 64 distinct quantized rows, tiled (content does not change speed). head_major: each head's
// rows contiguous instead (head h at h * rows * rb, stride rb). huge: MADV_HUGEPAGE.
struct KvBuffers {
  KvBuffers(TensorType t, int64_t hd, int64_t rows, bool head_major = false, bool huge = false)
      : rb(edgellm::io::row_bytes(t, hd)), stride(head_major ? rb : 2 * rb), head_bytes(head_major ? rows * rb : rb) {
    k = AllocateKv(2 * rb * rows, huge);
    v = AllocateKv(2 * rb * rows, huge);
    std::mt19937 rng(3);
    std::normal_distribution<float> dist(0.f, 1.f);
    std::vector<float> x(2 * hd);
    std::vector<uint8_t> row(2 * rb);
    for (uint8_t* buf : {k.get(), v.get()}) {
      for (int64_t j = 0; j < rows; ++j) {
        if (j < 64) {
          for (float& f : x) f = dist(rng);
          ops::quantize_row(t, x.data(), row.data(), 2 * hd);
        } else {
          std::memcpy(row.data(), buf + (j % 64) * stride, rb);
          std::memcpy(row.data() + rb, buf + head_bytes + (j % 64) * stride, rb);
        }
        std::memcpy(buf + j * stride, row.data(), rb);
        std::memcpy(buf + head_bytes + j * stride, row.data() + rb, rb);
      }
    }
  }
  size_t rb, stride, head_bytes;
  std::unique_ptr<uint8_t[], FreeDeleter> k, v;
};

TensorType KvTypeArg(int64_t a) {
  return a == 0 ? TensorType::F32 : a == 1 ? TensorType::F16 : TensorType::Q8_0;
}

// One decode step's attention over one KV head at a depth (attend_group_kv, one thread), shaped
// as Qwen2.5-0.5B (head_dim 64, 7 query heads per KV head) or 1.5B (128, 6); the rows (one head's,
// contiguous as model/kv_cache.h stores them) stay in L2 at depth 1024 and in L3 at 4096 / 16384, so
// equal per-position times say the kernel is bound by its arithmetic, not by the reads. Args: shape,
// depth, cache type (K = V: 0 f32, 1 f16, 2 q8_0).
// Counters: multiply-adds per second (scores and values) and cache bytes read per second.
void BM_AttendGroup(benchmark::State& state) {
  const bool big = state.range(0) != 0;
  const int64_t hd = big ? 128 : 64, nq = big ? 6 : 7, n = state.range(1);
  const TensorType t = KvTypeArg(state.range(2));
  const KvBuffers kv(t, hd, n, /*head_major=*/true);
  const auto q = random_vec(nq * hd);
  std::vector<float> scores(nq * n), out(nq * hd);
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  for (auto _ : state) {
    ops::attend_group_kv(q.data(), nq, {t, kv.k.get(), kv.stride}, {t, kv.v.get(), kv.stride}, n, hd, scale, 0.f,
                         scores.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GMAC/s"] = benchmark::Counter(iters * 2.0 * nq * hd * n / 1e9, benchmark::Counter::kIsRate);
  state.counters["KV GB/s"] = benchmark::Counter(iters * 2.0 * kv.rb * n / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(big ? "1.5B " : "0.5B ") + std::string(edgellm::io::type_name(t)) + " " + ops::active_isa());
}

// A decode step's attention of all 28 layers of Qwen2.5-1.5B (2 KV heads of 6 query heads, head_dim
// 128) at a depth, one task per KV head on the pool as the model runs it: the cache (250 MB at
// 16384 positions in q8_0) is read from memory, as in a real decode. Args: depth, cache type,
// threads, layout (0: both KV heads' rows interleaved, the cache's earlier layout; 1: head-major,
// as model/kv_cache.h stores them), pages (0: as allocated, 1: MADV_HUGEPAGE). Real time; "KV
// GB/s" is the cache bytes read per second.
void BM_AttendLayers(benchmark::State& state) {
  constexpr int64_t kLayers = 28, hd = 128, nq = 6, nkv = 2;
  const int64_t n = state.range(0);
  const TensorType t = KvTypeArg(state.range(1));
  ops::ThreadPool pool(static_cast<int>(state.range(2)));
  std::vector<std::unique_ptr<KvBuffers>> layers;
  const bool head_major = state.range(3) != 0, huge = state.range(4) != 0;
  for (int64_t l = 0; l < kLayers; ++l) layers.push_back(std::make_unique<KvBuffers>(t, hd, n, head_major, huge));
  const auto q = random_vec(nkv * nq * hd);
  std::vector<float> scores(static_cast<size_t>(pool.size()) * nq * n), out(nkv * nq * hd);
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  for (auto _ : state)
    for (const auto& kv : layers)
      pool.run_chunks(nkv, [&](int64_t h, int thread) {
        const size_t off = static_cast<size_t>(h) * kv->head_bytes;
        ops::attend_group_kv(&q[h * nq * hd], nq, {t, kv->k.get() + off, kv->stride}, {t, kv->v.get() + off, kv->stride},
                             n, hd, scale, 0.f, &scores[static_cast<size_t>(thread) * nq * n], &out[h * nq * hd]);
      });
  const double iters = static_cast<double>(state.iterations());
  state.counters["KV GB/s"] =
      benchmark::Counter(iters * kLayers * 2.0 * nkv * layers[0]->rb * n / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(edgellm::io::type_name(t)) + " " + ops::active_isa() + (head_major ? " head-major" : "") +
                 (huge ? " huge" : ""));
}

void AttendArgs(benchmark::internal::Benchmark* b) {
  for (int shape : {0, 1})
    for (int depth : {1024, 4096, 16384})
      for (int t : {0, 1, 2}) b->Args({shape, depth, t});
}

void AttendLayerArgs(benchmark::internal::Benchmark* b) {
  // q8_0 in both layouts; f32 and f16 head-major; q8_0 head-major in huge pages.
  for (int depth : {1024, 4096, 16384})
    for (int th : {1, 2}) {
      for (int hm : {0, 1}) b->Args({depth, 2, th, hm, 0});
      for (int t : {0, 1}) b->Args({depth, t, th, 1, 0});
      b->Args({depth, 2, th, 1, 1});
    }
}

void TypeThreadArgs(benchmark::internal::Benchmark* b) {
  for (int ti = 0; ti < static_cast<int>(std::size(kTypes)); ++ti)
    for (int th : {1, 2}) b->Args({ti, th});
}
void LayerArgs(benchmark::internal::Benchmark* b) {
  for (int ti : {3, 4, 5, 8, 10})  // Q8_0, Q4_0, Q4_1, Q4_K, Q6_K
    for (int th : {1, 2})
      for (int nt : {1, 64}) b->Args({ti, th, nt});
}
BENCHMARK(BM_MatmulDecode)->Apply(TypeThreadArgs)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatmulStreamPacked)->Apply(StreamPackedArgs)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MatmulCached)->Apply(CachedArgs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AttendGroup)->Apply(AttendArgs)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AttendLayers)->Apply(AttendLayerArgs)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SmolLMLayers)->Apply(LayerArgs)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
