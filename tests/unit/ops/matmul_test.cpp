// matmul / matmul_multi against a plain double-precision reference built from
// dequantize_row (itself checked against the gguf Python package), for every type, ISA,
// thread count, token count and misalignment.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "io/tensor_type.h"
#include "ops/ops.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::IsaGuard;
using testing::Misaligned;
using testing::random_floats;

struct Case {
  TensorType type;
  int64_t n_in, n_out;
};

// Quantized weights times int8-quantized activations: each activation element carries an
// error of at most amax(its activation block)/254 (round to nearest of a 127-level scale),
// so |y - ref| <= sum_i |w_i| * amax_256(x around i) / 254 (the 256-block amax bounds the
// 32-block one). Float formats: fp32 accumulation, relative 1e-5 of sum |w x| suffices.
double tolerance(TensorType t, const float* w, const float* x, int64_t n) {
  double sabs = 0, qerr = 0;
  for (int64_t i = 0; i < n; ++i) sabs += std::fabs(double(w[i]) * x[i]);
  const bool float_weights = t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
  if (!float_weights) {
    for (int64_t b = 0; b < n; b += 256) {
      double amax = 0;
      for (int64_t i = b; i < std::min(n, b + 256); ++i) amax = std::max(amax, double(std::fabs(x[i])));
      for (int64_t i = b; i < std::min(n, b + 256); ++i) qerr += std::fabs(w[i]) * amax / 254;
    }
  }
  return qerr * 1.01 + 2e-5 * sabs + 1e-6;
}

// Models are repacked at load only on x86 (AVX2/AVX-512). Elsewhere a K8 matrix can only be
// read through the slow unpack-to-rows path, which under qemu (scripts/test-arm) turns the
// K-quant sweeps into many minutes; there the round-trip tests below still cover K8.
#if defined(__x86_64__) || defined(__i386__)
constexpr bool kK8Native = true;
#else
constexpr bool kK8Native = false;
#endif
bool sweep_repacked(TensorType t) {
  if (!repackable(t)) return false;
  return kK8Native || !(t == TensorType::Q4_K || t == TensorType::Q6_K);
}

void check(const Case& c, int64_t n_tokens, int threads, size_t w_off, size_t x_off, uint32_t seed,
           Layout layout = Layout::Rows, size_t pack_off = 0) {
  const size_t rb = io::row_bytes(c.type, c.n_in);
  // Quantize random weights, then take the dequantized values as the exact reference weights.
  std::vector<float> wf = random_floats(static_cast<size_t>(c.n_in * c.n_out), seed);
  Misaligned wbuf(rb * c.n_out, w_off);
  for (int64_t o = 0; o < c.n_out; ++o)
    quantize_row(c.type, &wf[o * c.n_in], wbuf.data() + o * rb, c.n_in);
  for (int64_t o = 0; o < c.n_out; ++o) dequantize_row(c.type, wbuf.data() + o * rb, &wf[o * c.n_in], c.n_in);
  Misaligned xbuf(sizeof(float) * c.n_in * n_tokens, x_off);
  std::vector<float> xv = random_floats(static_cast<size_t>(c.n_in * n_tokens), seed + 7, -2.f, 2.f);
  std::memcpy(xbuf.data(), xv.data(), xv.size() * 4);
  std::vector<float> y(static_cast<size_t>(c.n_out * n_tokens), NAN);

  ThreadPool pool(threads);
  MatrixView W{c.type, wbuf.data(), c.n_in, c.n_out, rb};
  // The repacked copy pack_off bytes past a 64-byte boundary.
  Misaligned packed(layout != Layout::Rows ? repacked_bytes(W) : 0, pack_off);
  if (layout != Layout::Rows) W = repack(W, packed.data());
  matmul(W, xbuf.floats(), n_tokens, y.data(), pool);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < c.n_out; ++o) {
      double ref = 0;
      const float* w = &wf[o * c.n_in];
      const float* x = &xv[t * c.n_in];
      for (int64_t i = 0; i < c.n_in; ++i) ref += double(w[i]) * x[i];
      const double tol = tolerance(c.type, w, x, c.n_in);
      ASSERT_NEAR(y[t * c.n_out + o], ref, tol)
          << io::type_name(c.type) << " isa=" << active_isa() << " n_in=" << c.n_in
          << " n_out=" << c.n_out << " tokens=" << n_tokens << " t=" << t << " o=" << o
          << " threads=" << threads << " w_off=" << w_off << " x_off=" << x_off
          << (layout == Layout::X4 ? " X4" : layout == Layout::K8 ? " K8" : layout == Layout::X16 ? " X16" : "");
    }
}

class Matmul : public ::testing::TestWithParam<TensorType> {};

TEST_P(Matmul, MatchesReferenceAllIsasShapesThreads) {
  IsaGuard guard;
  const TensorType t = GetParam();
  const int64_t be = io::traits(t).block_elems;
  const int64_t base = be == 256 ? 256 : 32;
  // n_in: one block, odd block counts (vector tails), and a model-sized row.
  const int64_t n_ins[] = {base, base * 3, base * 9, be == 256 ? 768 : 576};
  const int64_t n_outs[] = {1, 5, 17, 67};
  uint32_t seed = 1;
  std::vector<Layout> layouts = {Layout::Rows};
  if (sweep_repacked(t)) layouts.push_back(t == TensorType::Q4_K || t == TensorType::Q6_K ? Layout::K8 : Layout::X4);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa)) << isa;
    for (Layout layout : layouts)
      for (int64_t n_in : n_ins)
        for (int64_t n_out : n_outs)
          for (int64_t nt : {1, 2, 3, 4, 5, 9})
            check({t, n_in, n_out}, nt, 1 + static_cast<int>(seed % 3), (seed * 13) % 64,
                  (seed * 5) % 64 & ~size_t{3}, seed, layout),
                ++seed;
  }
}

TEST_P(Matmul, MisalignedActivationsAndLargeBatch) {
  IsaGuard guard;
  const TensorType t = GetParam();
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa)) << isa;
    for (int threads : {1, 2, 3}) {
      check({t, 512, 33}, 1, threads, 1, 1, 100 + threads);    // x not even float-aligned
      check({t, 512, 33}, 37, threads, 63, 2, 200 + threads);  // prefill-sized batch
      if (sweep_repacked(t)) check({t, 512, 33}, 37, threads, 5, 2, 300 + threads, t == TensorType::Q4_K || t == TensorType::Q6_K ? Layout::K8 : Layout::X4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Matmul, ::testing::ValuesIn(testing::kAllWeightTypes),
                         [](const auto& info) { return std::string(io::type_name(info.param)); });

TEST(MatmulMulti, EqualsSeparateMatmuls) {
  IsaGuard guard;
  const int64_t n_in = 576, nt = 3;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<MatrixView> Ws;
  const TensorType types[] = {TensorType::Q4_1, TensorType::Q8_0, TensorType::F32};
  const int64_t outs[] = {64, 32, 19};
  for (int m = 0; m < 3; ++m) {
    const size_t rb = io::row_bytes(types[m], n_in);
    bufs.emplace_back(rb * outs[m]);
    auto wf = random_floats(n_in * outs[m], 50 + m);
    for (int64_t o = 0; o < outs[m]; ++o) quantize_row(types[m], &wf[o * n_in], bufs[m].data() + o * rb, n_in);
    Ws.push_back({types[m], bufs[m].data(), n_in, outs[m], rb});
  }
  auto x = random_floats(n_in * nt, 99);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<std::vector<float>> multi(3), single(3);
      float* ys[3];
      for (int m = 0; m < 3; ++m) {
        multi[m].assign(outs[m] * nt, NAN);
        single[m].assign(outs[m] * nt, NAN);
        ys[m] = multi[m].data();
      }
      matmul_multi(Ws.data(), ys, 3, x.data(), nt, pool);
      for (int m = 0; m < 3; ++m) matmul(Ws[m], x.data(), nt, single[m].data(), pool);
      for (int m = 0; m < 3; ++m)
        for (size_t i = 0; i < multi[m].size(); ++i)
          ASSERT_FLOAT_EQ(multi[m][i], single[m][i]) << isa << " m=" << m << " i=" << i;
    }
  }
}

// The X4 and K8 layouts hold the same bytes: every row read back (matrix_row) equals the original,
// including the repeated last row of a partial group, and a large multi-threaded product
// through the repacked matrix equals the row-major one to rounding.
TEST(RepackX4, RowsRoundTripAndProductMatches) {
  IsaGuard guard;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                       TensorType::Q4_K, TensorType::Q6_K}) {
    const bool k8 = t == TensorType::Q4_K || t == TensorType::Q6_K;
    for (int64_t n_out : {1, 3, 4, 6, 9, 67}) {
      const int64_t n_in = k8 ? 512 : 96;
      const size_t rb = io::row_bytes(t, n_in);
      std::vector<uint8_t> w(rb * n_out);
      const auto wf = random_floats(static_cast<size_t>(n_in * n_out), 21 + static_cast<uint32_t>(n_out));
      for (int64_t o = 0; o < n_out; ++o) quantize_row(t, &wf[o * n_in], w.data() + o * rb, n_in);
      const MatrixView W{t, w.data(), n_in, n_out, rb};
      std::vector<uint8_t> packed, scratch;
      const MatrixView P = repack(W, packed);
      EXPECT_EQ(P.layout, repacked_layout(t));
      EXPECT_EQ(P.layout, k8 ? Layout::K8 : use_vnni() && active_isa() == std::string("avx3") && (t == TensorType::Q5_0 || t == TensorType::Q8_0) ? Layout::X16 : Layout::X4);
      // X4 and X16 keep the bytes of their rows; K8 Q4_K adds 32 bytes per 8-row super-block (unpacked scales).
      const int64_t R = k8 ? 8 : P.layout == Layout::X16 ? 16 : 4;
      const size_t extra = t == TensorType::Q4_K ? 32 * static_cast<size_t>(n_in / 256) : 0;
      EXPECT_EQ(packed.size(), (R * rb + extra) * static_cast<size_t>((n_out + R - 1) / R));
      EXPECT_EQ(packed.size(), repacked_bytes(W));
      for (int64_t r = 0; r < n_out; ++r)
        ASSERT_EQ(std::memcmp(matrix_row(P, r, scratch), w.data() + r * rb, rb), 0) << io::type_name(t) << " row " << r;
      EXPECT_THROW(repack(P, scratch), Error);  // already packed
      // The source is reported consumed front to back, every byte once.
      std::vector<uint8_t> again(repacked_bytes(W));
      size_t next = 0;
      repack(W, again.data(), [&](const void* p, size_t n) {
        EXPECT_EQ(static_cast<const uint8_t*>(p), w.data() + next);
        next += n;
      });
      EXPECT_EQ(next, w.size());
      EXPECT_EQ(again, packed);
      // Same integer dot products, float sums in another order: equal to float rounding.
      const int64_t nt = 5;
      const auto x = random_floats(static_cast<size_t>(n_in * nt), 5, -3.f, 3.f);
      std::vector<float> yr(n_out * nt), yp(n_out * nt);
      for (const std::string& isa : available_isas()) {
        ASSERT_TRUE(force_isa(isa));
        ThreadPool pool(2);
        matmul(W, x.data(), nt, yr.data(), pool);
        matmul(P, x.data(), nt, yp.data(), pool);
        for (size_t i = 0; i < yr.size(); ++i)
          ASSERT_NEAR(yp[i], yr[i], 1e-5 * (1 + std::fabs(yr[i]))) << isa << " " << io::type_name(t) << " i=" << i;
      }
    }
  }
  std::vector<uint8_t> w(io::row_bytes(TensorType::Q8_0, 32) * 4), packed;
  EXPECT_THROW(repack_x4({TensorType::Q4_K, w.data(), 256, 1, 144}, packed), Error);  // no X4 layout
  EXPECT_THROW(repack({TensorType::Q5_K, w.data(), 256, 1, 176}, packed), Error);      // no layout at all
  EXPECT_THROW(repack_x4({TensorType::Q4_0, w.data(), 32, 2, 40}, packed), Error);  // padded rows
}

// X4 with AVX-512 VNNI takes up to 8 tokens per tile with one dpbusd per product, without it
// 4 tokens per tile with maddubs; the integer sums are exact and the float steps shared, so both
// paths give bitwise the same results: every X4 format, 1-17 tokens (one to three tiles of
// either width, with tails), rows not a multiple of the group, extreme weights and activations
// (Q8_0's -128, the largest nibbles), on every ISA. Where the CPU lacks VNNI both runs take the
// maddubs path and this reduces to a determinism check.
TEST(RepackX4, VnniEqualsMaddubsBitwise) {
  IsaGuard guard;
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0}) {
    const int64_t n_in = 160, n_out = 13, max_tok = 17;
    const size_t rb = io::row_bytes(t, n_in);
    std::vector<uint8_t> w(rb * n_out);
    auto wf = random_floats(static_cast<size_t>(n_in * n_out), 51);
    for (size_t i = 0; i < wf.size(); i += 7) wf[i] = i % 2 ? 1.f : -1.f;  // block extremes
    for (int64_t o = 0; o < n_out; ++o) quantize_row(t, &wf[o * n_in], w.data() + o * rb, n_in);
    std::vector<uint8_t> packed;
    const MatrixView P = repack_x4(MatrixView{t, w.data(), n_in, n_out, rb}, packed);
    auto x = random_floats(static_cast<size_t>(n_in * max_tok), 52, -1.f, 1.f);
    for (size_t i = 0; i < x.size(); i += 29) x[i] = i % 2 ? 8.f : -8.f;
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      ThreadPool pool(1);
      for (int64_t nt = 1; nt <= max_tok; ++nt) {
        std::vector<float> y[2];
        for (int v = 0; v < 2; ++v) {
          set_vnni_allowed(v == 1);
          y[v].assign(static_cast<size_t>(n_out * nt), 0.f);
          matmul(P, x.data(), nt, y[v].data(), pool);
        }
        ASSERT_EQ(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)), 0)
            << isa << " " << io::type_name(t) << " tokens=" << nt;
      }
    }
  }
  set_vnni_allowed(true);
}

// K8 on AVX-512 runs two 8-row groups per 512-bit vector and a lone group with 256-bit vectors
// (without VNNI) or paired with itself (VNNI); either way a row's result does not depend on which
// ran it: rows 0-7 alone (one group) equal rows 0-7 of 16 and of 24 (paired, then paired + lone),
// bitwise. With and without VNNI (where the CPU has it); the reference sweep runs both too.
TEST(RepackK8, PairedGroupsEqualLoneGroupBitwise) {
  IsaGuard guard;
  for (bool vnni : {true, false})
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K}) {
    set_vnni_allowed(vnni);
    const int64_t n_in = 768, nt = 5;
    const size_t rb = io::row_bytes(t, n_in);
    std::vector<uint8_t> w(rb * 24);
    const auto wf = random_floats(static_cast<size_t>(n_in * 24), 31);
    for (int64_t o = 0; o < 24; ++o) quantize_row(t, &wf[o * n_in], w.data() + o * rb, n_in);
    const auto x = random_floats(static_cast<size_t>(n_in * nt), 32, -2.f, 2.f);
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      ThreadPool pool(1);
      std::vector<float> ref;
      for (int64_t n_out : {8, 16, 24}) {
        std::vector<uint8_t> packed;
        const MatrixView P = repack(MatrixView{t, w.data(), n_in, n_out, rb}, packed);
        std::vector<float> y(static_cast<size_t>(n_out * nt));
        matmul(P, x.data(), nt, y.data(), pool);
        if (n_out == 8) ref = y;
        for (int64_t k = 0; k < nt; ++k)
          for (int64_t r = 0; r < 8; ++r) {
            const float a = y[k * n_out + r], b = ref[k * 8 + r];
            ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0)
                << isa << " " << io::type_name(t) << " n_out=" << n_out << " vnni=" << vnni;
          }
      }
    }
  }
  set_vnni_allowed(true);
}

// f(t) for Q4_K and Q6_K with each ISA forced in turn (the K8 sweeps below).
template <class F>
void for_each_k8_type_and_isa(F f) {
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K})
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      f(t);
    }
}

// The AVX-512 K8 kernel without VNNI (the path of AVX-512 CPUs that lack it) against the reference.
TEST(RepackK8, WithoutVnniMatchesReference) {
  if (!kK8Native) GTEST_SKIP() << "K8 kernels exist only on x86 (AVX2/AVX-512); elsewhere K8 is never loaded";
  IsaGuard guard;
  set_vnni_allowed(false);
  for_each_k8_type_and_isa([](TensorType t) {
    uint32_t seed = 400;
    for (int64_t n_out : {5, 17, 67})
      for (int64_t nt : {1, 3, 9})
        check({t, 768, n_out}, nt, 1 + static_cast<int>(seed % 3), seed % 64, 4, seed, Layout::K8), ++seed;
  });
  set_vnni_allowed(true);
}

// The AVX2 K8 tile keeps 1-4 tokens' accumulators in registers and 5-16 in memory, 16 tokens per
// tile; with AVX-512 VNNI 2-8 tokens take the per-vector tiles and 9-16 the weights-stationary
// ones (one token: the one-group tile): every token count up to two tiles plus one, against the
// reference, on every ISA, with n_out = 17 (two full groups and a lone row) and n_in = 768 (three
// super-blocks).
TEST(RepackK8, EveryTileWidthMatchesReference) {
  if (!kK8Native) GTEST_SKIP() << "K8 kernels exist only on x86 (AVX2/AVX-512); elsewhere K8 is never loaded";
  IsaGuard guard;
  for_each_k8_type_and_isa([](TensorType t) {
    uint32_t seed = 500;
    for (int64_t nt = 1; nt <= 33; nt += nt < 17 ? 1 : 16)
      check({t, 768, 17}, nt, 1 + static_cast<int>(seed % 2), seed % 64, 4, seed, Layout::K8), ++seed;
  });
}

// K8 against the reference with VNNI on and off, on every ISA, for each token count in nts: one to
// nine super-blocks, lone rows and partial groups, thread counts that split the rows at different
// groups, and misaligned weights (row-major and repacked) and activations.
void k8_sweep_matches_reference(std::initializer_list<int64_t> nts, std::initializer_list<int64_t> n_outs,
                                uint32_t seed0) {
  IsaGuard guard;
  for (bool vnni : {true, false}) {
    set_vnni_allowed(vnni);
    for_each_k8_type_and_isa([&](TensorType t) {
      uint32_t seed = seed0;
      for (int64_t nt : nts)
        for (int64_t n_in : {256, 768, 2304})
          for (int64_t n_out : n_outs)
            check({t, n_in, n_out}, nt, 1 + static_cast<int>(seed % 3), (seed * 7) % 64, (seed * 5) % 64, seed,
                  Layout::K8, (seed * 11) % 64),
                ++seed;
    });
  }
  set_vnni_allowed(true);
}

// One token (decode) runs K8 groups one at a time in 256-bit tiles (VNNI or maddubs), not the
// paired 512-bit tiles.
TEST(RepackK8, OneTokenMatchesReference) {
  if (!kK8Native) GTEST_SKIP() << "K8 kernels exist only on x86 (AVX2/AVX-512); elsewhere K8 is never loaded";
  k8_sweep_matches_reference({1}, {1, 7, 8, 9, 17, 67}, 600);
}

// Passes of 2-8 tokens (speculative verification, batched decode): with VNNI 2-5 tokens run the
// one-group 256-bit tile (its activations as the products' broadcast memory operands; two int32
// chains per token up to 4 tokens, one at 5), 6-8 the paired 512-bit tiles; without VNNI the
// maddubs tiles.
TEST(RepackK8, FewTokensMatchReference) {
  if (!kK8Native) GTEST_SKIP() << "K8 kernels exist only on x86 (AVX2/AVX-512); elsewhere K8 is never loaded";
  k8_sweep_matches_reference({2, 3, 4, 5, 6, 8}, {7, 9, 17, 67}, 700);
}

TEST(Matmul, RejectsBadShapes) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(1000);
  std::vector<float> x(64), y(4);
  const MatrixView bad{TensorType::Q4_K, w.data(), 64, 2, 36};
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), Error);
  const MatrixView unsupported{TensorType::Q2_K, w.data(), 256, 1, 84};
  EXPECT_THROW(matmul(unsupported, x.data(), 1, y.data(), pool), Error);
}

}  // namespace
}  // namespace edgellm::ops
