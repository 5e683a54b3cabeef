// matmul / matmul_multi: checks, activation quantization (once per call, shared by all
// matrices), and the split of weight rows over the pool in one parallel region.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/kernel_table.h"
#include "ops/pack_k8.h"
#include "ops/pack_x16.h"
#include "ops/pack_x4.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::ops {

void check_row_length(TensorType t, int64_t n, const char* what);  // ops.cpp

namespace {

int slot_of(TensorType t) {
  switch (t) {
    case TensorType::F32: return kF32;
    case TensorType::F16: return kF16;
    case TensorType::BF16: return kBF16;
    case TensorType::Q8_0: return kQ8_0;
    case TensorType::Q4_0: return kQ4_0;
    case TensorType::Q4_1: return kQ4_1;
    case TensorType::Q5_0: return kQ5_0;
    case TensorType::Q5_1: return kQ5_1;
    case TensorType::Q4_K: return kQ4_K;
    case TensorType::Q5_K: return kQ5_K;
    case TensorType::Q6_K: return kQ6_K;
    default: return -1;
  }
}

int x4_slot_of(TensorType t) {
  switch (t) {
    case TensorType::Q4_0: return kX4SlotQ4_0;
    case TensorType::Q4_1: return kX4SlotQ4_1;
    case TensorType::Q5_0: return kX4SlotQ5_0;
    case TensorType::Q5_1: return kX4SlotQ5_1;
    default: return kX4SlotQ8_0;  // matmul_multi checks x4::packable first
  }
}

std::atomic<bool> g_exact{[] {
  const char* e = std::getenv("EDGELLM_EXACT");
  return e && *e && std::string(e) != "0";
}()};

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

ActKind act_kind(TensorType t) {
  if (g_exact.load(std::memory_order_relaxed) && !is_float_type(t)) return ActKind::F32;
  switch (t) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16: return ActKind::F32;
    case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K: return ActKind::Q8_KA;
    default: return ActKind::Q8_A;
  }
}

// Below this many weight bytes a region's wake-up costs more than the split saves.
constexpr size_t kMinParallelBytes = 8 * 1024;
// Largest share of weight bytes one claimed chunk covers (see the split in matmul_multi).
constexpr size_t kChunkBytes = 256 * 1024;
// Token counts from which activation quantization is itself split over the pool (a batched
// decode step of 8 sequences quantized on the caller alone while the other threads waited).
constexpr int64_t kParallelQuantTokens = 4;

struct ActBuffers {
  std::vector<uint8_t> a, k;
  std::vector<float> r;   // residual x - dequant(int8 x), per token
  std::vector<float> y2;  // two-level mode: [n_mats][2 * n_tokens][n_out] partial outputs
};

// Exact mode for quantized weights: each row is dequantized to fp32 once and dotted with the
// fp32 activations of every token, so the only rounding is the weights' own (as in a NumPy
// reference). Slower than the int8 kernels; for verification and accuracy-critical use.
void exact_gemv(const MatrixView& W, int64_t r0, int64_t r1, const float* x, int64_t n_tokens, float* y);

}  // namespace

bool repackable(TensorType t) { return x4::packable(t) || k8::packable(t); }

bool repack_preferred(TensorType t) {
  static const bool enabled = [] {
    const char* e = std::getenv("EDGELLM_REPACK");
    return !(e && std::string(e) == "0");
  }();
  // Exact mode reads rows through fp32 (exact_gemv): a repacked copy would only be unpacked again.
  return enabled && !exact_activations() && repackable(t) && active_kernels().x4_native;
}

namespace {
// Rows per group of W's repacked layout and bytes per group.
int group_rows(Layout layout) {
  return layout == Layout::K8 ? k8::kRows : layout == Layout::X16 ? x16::kRows : 4;
}
int group_rows(const MatrixView& W) { return group_rows(W.layout); }
size_t group_stride(TensorType t, Layout layout, int64_t n_in) {
  return layout == Layout::K8    ? k8::group_bytes(t, n_in)
         : layout == Layout::X16 ? x16::group_bytes(t, n_in)
                                 : x4::group_bytes(t, n_in);
}
// A group of W's repacked layout -> its rows in GGUF layout.
void unpack_group(const MatrixView& W, const uint8_t* group, uint8_t* dst) {
  if (W.layout == Layout::K8)
    k8::unpack_group(W.type, group, W.n_in, dst);
  else if (W.layout == Layout::X16)
    x16::unpack_group(W.type, group, W.n_in, dst);
  else
    x4::unpack_group(W.type, group, W.n_in, dst);
}
void check_repackable(const MatrixView& W, const char* what) {
  check_row_length(W.type, W.n_in, what);
  if (!repackable(W.type))
    throw InvalidArgument(std::string(what) + ": no repacked layout for " + std::string(io::type_name(W.type)));
  if (W.layout != Layout::Rows) throw InvalidArgument(std::string(what) + ": matrix is already repacked");
  if (W.row_stride != io::row_bytes(W.type, W.n_in))
    throw InvalidArgument(std::string(what) + ": rows must be contiguous (row_stride == row bytes)");
}
}  // namespace

Layout repacked_layout(TensorType t) {
  if (k8::packable(t)) return Layout::K8;
  // One int32 vector of 16 rows per token: one float step per 8 vpdpbusd instead of per 4.
  if (x16::packable(t) && active_kernels().x16_native && use_vnni()) return Layout::X16;
  return Layout::X4;
}

size_t repacked_bytes(const MatrixView& W) {
  if (!repackable(W.type)) return 0;
  const Layout layout = repacked_layout(W.type);
  const int64_t rows = group_rows(layout);
  return group_stride(W.type, layout, W.n_in) * static_cast<size_t>((W.n_out + rows - 1) / rows);
}

namespace {
MatrixView repack_as(const MatrixView& W, Layout layout, uint8_t* dst,
                     const std::function<void(const void*, size_t)>& consumed) {
  const int64_t rows = group_rows(layout), groups = (W.n_out + rows - 1) / rows;
  const size_t gb = group_stride(W.type, layout, W.n_in);
  const auto* src = static_cast<const uint8_t*>(W.data);
  size_t done = 0;  // source bytes already reported as consumed
  for (int64_t g = 0; g < groups; ++g) {
    if (layout == Layout::K8)
      k8::pack_group(W.type, src, W.row_stride, W.n_in, W.n_out, g, dst + g * gb);
    else if (layout == Layout::X16)
      x16::pack_group(W.type, src, W.row_stride, W.n_in, W.n_out, g, dst + g * gb);
    else
      x4::pack_group(W.type, src, W.row_stride, W.n_in, W.n_out, g, dst + g * gb);
    // Rows before the next group are not read again (a last partial group re-reads only its own rows).
    const size_t read = std::min<size_t>(static_cast<size_t>(W.n_out), static_cast<size_t>((g + 1) * rows)) * W.row_stride;
    if (consumed && (read - done >= (size_t{1} << 20) || g == groups - 1)) {
      consumed(src + done, read - done);
      done = read;
    }
  }
  MatrixView out = W;
  out.data = dst;
  out.layout = layout;
  return out;
}
}  // namespace

MatrixView repack(const MatrixView& W, uint8_t* dst, const std::function<void(const void*, size_t)>& consumed) {
  check_repackable(W, "repack");
  return repack_as(W, repacked_layout(W.type), dst, consumed);
}

MatrixView repack(const MatrixView& W, std::vector<uint8_t>& storage) {
  check_repackable(W, "repack");
  storage.resize(repacked_bytes(W));
  return repack(W, storage.data());
}

MatrixView repack_x4(const MatrixView& W, std::vector<uint8_t>& storage) {
  if (!x4::packable(W.type))
    throw InvalidArgument("repack_x4: no X4 layout for " + std::string(io::type_name(W.type)));
  check_repackable(W, "repack_x4");
  storage.resize(x4::group_bytes(W.type, W.n_in) * static_cast<size_t>((W.n_out + 3) / 4));
  return repack_as(W, Layout::X4, storage.data(), {});
}

namespace {
// Rows of a repacked layout come in groups: each group is unpacked once for all its rows
// (per row it was unpacked R times, which made exact mode and sanitizer runs crawl).
void exact_gemv(const MatrixView& W, int64_t r0, int64_t r1, const float* x, int64_t n_tokens, float* y) {
  thread_local std::vector<float> row;
  thread_local std::vector<uint8_t> scratch;
  row.resize(static_cast<size_t>(W.n_in));
  const auto* base = static_cast<const uint8_t*>(W.data);
  const int R = W.layout == Layout::Rows ? 1 : group_rows(W);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src;
    if (W.layout == Layout::Rows) {
      src = base + r * W.row_stride;
    } else {
      if (r == r0 || r % R == 0) {
        scratch.resize(static_cast<size_t>(R) * W.row_stride);
        unpack_group(W, base + (r / R) * group_stride(W.type, W.layout, W.n_in), scratch.data());
      }
      src = scratch.data() + (r % R) * W.row_stride;
    }
    dequantize_row(W.type, src, row.data(), W.n_in);
    for (int64_t t = 0; t < n_tokens; ++t) y[t * W.n_out + r] = dot_f32(row.data(), x + t * W.n_in, W.n_in);
  }
}
}  // namespace

const uint8_t* matrix_row(const MatrixView& W, int64_t r, std::vector<uint8_t>& scratch) {
  const auto* base = static_cast<const uint8_t*>(W.data);
  if (W.layout == Layout::Rows) return base + r * W.row_stride;
  const int R = group_rows(W);
  scratch.resize(R * W.row_stride);
  unpack_group(W, base + (r / R) * group_stride(W.type, W.layout, W.n_in), scratch.data());
  return scratch.data() + (r % R) * W.row_stride;
}

namespace {
std::atomic<bool> g_vnni_allowed{[] {
  const char* e = std::getenv("EDGELLM_VNNI");
  return !(e && std::string(e) == "0");
}()};
}  // namespace

void set_vnni_allowed(bool allowed) { g_vnni_allowed.store(allowed, std::memory_order_relaxed); }

bool use_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool supported = __builtin_cpu_supports("avx512vnni");
#else
  static const bool supported = false;
#endif
  return supported && g_vnni_allowed.load(std::memory_order_relaxed);
}

void set_exact_activations(bool exact) { g_exact.store(exact, std::memory_order_relaxed); }
bool exact_activations() { return g_exact.load(std::memory_order_relaxed); }

void matmul(const MatrixView& W, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  float* ys[1] = {y};
  matmul_multi(&W, ys, 1, x, n_tokens, pool);
}

void matmul_multi(const MatrixView* Ws, float* const* ys, int n_mats, const float* x,
                  int64_t n_tokens, ThreadPool& pool) {
  if (n_mats <= 0 || n_tokens <= 0) return;
  const int64_t n_in = Ws[0].n_in;
  bool need_a = false, need_k = false;
  size_t total = 0;
  for (int m = 0; m < n_mats; ++m) {
    const MatrixView& W = Ws[m];
    check_row_length(W.type, W.n_in, "matmul");
    if (W.n_in != n_in)
      throw InvalidArgument("matmul_multi: matrices must share n_in (" + std::to_string(n_in) + " vs " +
                            std::to_string(W.n_in) + ")");
    if (W.n_out < 0 || (W.n_out > 0 && (!W.data || !ys[m])))
      throw InvalidArgument("matmul: null data/output or negative n_out");
    if (W.row_stride < io::row_bytes(W.type, W.n_in))
      throw InvalidArgument("matmul: row_stride " + std::to_string(W.row_stride) + " is smaller than a " +
                            std::string(io::type_name(W.type)) + " row of " + std::to_string(W.n_in) + " elements");
    if (W.layout == Layout::X4 && (!x4::packable(W.type) || W.row_stride != io::row_bytes(W.type, W.n_in)))
      throw InvalidArgument("matmul: X4 layout needs Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 with contiguous rows, not " +
                            std::string(io::type_name(W.type)));
    if (W.layout == Layout::K8 && (!k8::packable(W.type) || W.row_stride != io::row_bytes(W.type, W.n_in)))
      throw InvalidArgument("matmul: K8 layout needs Q4_K/Q6_K with contiguous rows, not " +
                            std::string(io::type_name(W.type)));
    if (W.layout == Layout::X16 && (!x16::packable(W.type) || W.row_stride != io::row_bytes(W.type, W.n_in)))
      throw InvalidArgument("matmul: X16 layout needs Q5_0/Q8_0 with contiguous rows, not " +
                            std::string(io::type_name(W.type)));
    need_a |= act_kind(W.type) == ActKind::Q8_A;
    need_k |= act_kind(W.type) == ActKind::Q8_KA;
    total += static_cast<size_t>(W.n_out) * W.row_stride;
  }
  if (n_in == 0 || total == 0) {
    for (int m = 0; m < n_mats; ++m) std::fill(ys[m], ys[m] + Ws[m].n_out * n_tokens, 0.f);
    return;
  }
  const KernelTable& K = active_kernels();

  // Quantized activations: [n_tokens][n_in/32] Q8_A and/or [n_tokens][n_in/256] Q8_KA.
  // thread_local: one buffer per calling thread; workers reach it through these pointers
  // (naming `bufs` inside the worker lambda would resolve to the worker's own copy).
  thread_local ActBuffers tl_bufs;
  ActBuffers& bufs = tl_bufs;
  const size_t stride_a = static_cast<size_t>(n_in / 32) * sizeof(BlockQ8_A);
  const size_t stride_k = static_cast<size_t>(n_in / 256) * sizeof(BlockQ8_KA);
  if (need_a && bufs.a.size() < stride_a * n_tokens) bufs.a.resize(stride_a * n_tokens);
  if (need_k && bufs.k.size() < stride_k * n_tokens) bufs.k.resize(stride_k * n_tokens);
  auto quantize_tokens = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      if (need_a) K.quantize_q8a(x + t * n_in, n_in, reinterpret_cast<BlockQ8_A*>(bufs.a.data() + t * stride_a));
      if (need_k) K.quantize_q8ka(x + t * n_in, n_in, reinterpret_cast<BlockQ8_KA*>(bufs.k.data() + t * stride_k));
    }
  };
  if (need_a || need_k) {
    if (n_tokens >= kParallelQuantTokens && pool.size() > 1)
      pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) { quantize_tokens(b, e); });
    else
      quantize_tokens(0, n_tokens);
  }

  // The weight bytes of all matrices (the decode cost) are cut into chunks; each thread streams
  // its contiguous share of them and then helps the others (ThreadPool::run_chunks), so a
  // thread that starts late (busy machine) does not stall the rest. At least 4 chunks per
  // thread and at most kChunkBytes each: a worker descheduled in the middle of a chunk then
  // holds back the caller for a short chunk only, and threads finish within a chunk of each
  // other.
  const int64_t nc = total < kMinParallelBytes
                         ? 1
                         : std::max<int64_t>(static_cast<int64_t>(pool.size()) * 4,
                                             static_cast<int64_t>(total / kChunkBytes));
  auto work = [&](int64_t chunk) {
    const size_t b0 = total * chunk / nc, b1 = total * (chunk + 1) / nc;
    size_t base = 0;
    for (int m = 0; m < n_mats; ++m) {
      const MatrixView& W = Ws[m];
      const size_t bytes = static_cast<size_t>(W.n_out) * W.row_stride;
      auto row_at = [&](size_t b) -> int64_t {
        if (b <= base) return 0;
        // Whole tiles: a boundary inside a group would make both neighbours run it. K8: whole pairs
        // of groups (16 rows), as the batched K8 tiles take two adjacent groups per 512-bit vector
        // and pair a chunk's odd last group with itself (its work done twice); with 8-row boundaries
        // about half the chunks of the 1.5B's ffn_down ended on such a lone group. Else whole groups
        // (16 rows for X16, 4 for X4; X4 at 8 rows measured no faster on the 0.5B).
        const int64_t mask = W.layout == Layout::K8 ? ~int64_t{15} : ~int64_t{group_rows(W.layout) - 1};
        return std::min<int64_t>(W.n_out, static_cast<int64_t>((b - base) / W.row_stride) & mask);
      };
      const int64_t r0 = row_at(b0), r1 = chunk == nc - 1 ? W.n_out : row_at(b1);
      base += bytes;
      if (r0 >= r1) continue;
      const uint8_t* act;
      size_t act_stride;
      switch (act_kind(W.type)) {
        case ActKind::F32:
          act = reinterpret_cast<const uint8_t*>(x), act_stride = static_cast<size_t>(n_in) * sizeof(float);
          break;
        case ActKind::Q8_A: act = bufs.a.data(), act_stride = stride_a; break;
        default: act = bufs.k.data(), act_stride = stride_k; break;
      }
      if (act_kind(W.type) == ActKind::F32 && !is_float_type(W.type)) {
        exact_gemv(W, r0, r1, x, n_tokens, ys[m]);
        continue;
      }
      const GemvFn fn = W.layout == Layout::X4    ? K.gemv_x4[x4_slot_of(W.type)]
                        : W.layout == Layout::K8  ? K.gemv_k8[W.type == TensorType::Q6_K ? 1 : 0]
                        : W.layout == Layout::X16 ? K.gemv_x16[W.type == TensorType::Q8_0 ? 1 : 0]
                                                  : K.gemv[slot_of(W.type)];
      fn(static_cast<const uint8_t*>(W.data), W.row_stride, n_in, r0, r1, act, act_stride, n_tokens, ys[m], W.n_out);
    }
  };
  if (nc == 1)
    work(0);
  else
    pool.run_chunks(nc, [&](int64_t chunk, int) { work(chunk); });
}

}  // namespace edgellm::ops
