// attend_head_kv over F32/F16/Q8_0/Q4_0 cache rows (keys and values of different types) against
// a double-precision reference over the rows dequantized by the scalar reference code, on every
// ISA, with head sizes that leave vector tails, 4-key pass remainders and misaligned rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/attention_kv.h"
#include "ops/fp16.h"
#include "ops/ops.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::ops {
namespace {
using io::TensorType;
using testing::for_each_isa;
using testing::IsaGuard;
using testing::Misaligned;
using testing::random_floats;

constexpr TensorType kKvTypes[] = {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0};

// n rows of hd random values stored as `t`, `pad` bytes between rows (other heads), the
// buffer starting `off` bytes past an alignment boundary. deq: the rows as the reference reads them.
struct Rows {
  Rows(TensorType t, int64_t n, int64_t hd, size_t pad, size_t off, uint32_t seed, float lo, float hi)
      : stride(io::row_bytes(t, hd) + pad), buf(stride * n, off), deq(n * hd) {
    const auto x = random_floats(n * hd, seed, lo, hi);
    for (int64_t j = 0; j < n; ++j) {
      quantize_row(t, &x[j * hd], buf.data() + j * stride, hd);
      dequantize_row(t, buf.data() + j * stride, &deq[j * hd], hd);
    }
    view = {t, buf.data(), stride};
  }
  // Q8_0 only: block b's scale (negative counts as 0, as the int8-weights kernel reads it) and quant i of row j.
  float scale(int64_t j, int64_t b) const { return std::max(0.f, load_f16(bytes() + j * stride + 34 * b)); }
  int quant(int64_t j, int64_t i) const {
    return static_cast<int8_t>(bytes()[j * stride + 34 * (i / 32) + 2 + i % 32]);
  }
  const uint8_t* bytes() const { return const_cast<Misaligned&>(buf).data(); }
  size_t stride;
  Misaligned buf;
  std::vector<float> deq;
  KvRows view;
};

// Normalised softmax probabilities of one head in double precision over dequantized keys.
std::vector<double> reference_probs(const float* q, const Rows& k, int64_t n, int64_t hd, float scale,
                                    float softcap) {
  std::vector<double> s(n);
  double mx = -INFINITY, sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    double dd = 0;
    for (int64_t i = 0; i < hd; ++i) dd += double(q[i]) * k.deq[j * hd + i];
    dd *= scale;
    if (softcap > 0) dd = softcap * std::tanh(dd / softcap);
    s[j] = dd, mx = std::max(mx, dd);
  }
  for (auto& e : s) e = std::exp(e - mx), sum += e;
  for (auto& e : s) e /= sum;
  return s;
}

TEST(AttentionKv, MatchesReferenceEveryTypePair) {
  for_each_isa([](const std::string& isa) {
    for (TensorType kt : kKvTypes)
      for (TensorType vt : kKvTypes)
        for (int64_t hd : {1, 7, 33, 80, 32, 64, 96, 128, 256}) {
          const bool blocked = io::traits(kt).block_elems > 1 || io::traits(vt).block_elems > 1;
          if (blocked && hd % 32 != 0) continue;
          for (int64_t n : {1, 3, 4, 5, 17, 100})
            for (float softcap : {0.f, 5.f}) {
              const uint32_t seed = static_cast<uint32_t>(hd * 1000 + n);
              Rows k(kt, n, hd, 6, 1, seed, -2, 2), v(vt, n, hd, 10, 3, seed + 1, -1, 1);
              const auto q = random_floats(hd, seed + 2);
              Misaligned qb(hd * 4, 4), ob(hd * 4, 8);
              std::memcpy(qb.data(), q.data(), hd * 4);
              std::vector<float> scores(n);
              const float scale = 1.f / std::sqrt(static_cast<float>(hd));
              attend_head_kv(qb.floats(), k.view, v.view, n, hd, scale, softcap, scores.data(), ob.floats());
              const auto p = reference_probs(q.data(), k, n, hd, scale, softcap);
              for (int64_t i = 0; i < hd; ++i) {
                double ref = 0;
                for (int64_t j = 0; j < n; ++j) ref += p[j] * v.deq[j * hd + i];
                ASSERT_NEAR(ob.floats()[i], ref, 3e-5)
                    << isa << " k=" << io::type_name(kt) << " v=" << io::type_name(vt) << " hd=" << hd << " n=" << n
                    << " cap=" << softcap << " i=" << i;
              }
            }
        }
  });
}

// Scalar double-precision reference of one head over dequantized rows.
std::vector<double> reference_head(const float* q, const Rows& k, const Rows& v, int64_t n, int64_t hd, float scale,
                                   float softcap) {
  const auto p = reference_probs(q, k, n, hd, scale, softcap);
  std::vector<double> out(hd, 0.0);
  for (int64_t i = 0; i < hd; ++i)
    for (int64_t j = 0; j < n; ++j) out[i] += p[j] * v.deq[j * hd + i];
  return out;
}

// The query as attend_group_kv's int8 path sees it (ops/attention_kv.h): per block of 32,
// d = max|x| / 127, q1 = round(x / d), q2 = round((x - d q1) * 256 / d) (nearest even, +-127),
// value d * q1 + d / 256 * q2.
std::vector<float> quantized_query(const std::vector<float>& q) {
  std::vector<float> out(q.size());
  auto round127 = [](float r) { return std::min(127.f, std::max(-127.f, std::nearbyint(r))); };
  for (size_t b = 0; b + 32 <= q.size(); b += 32) {
    float amax = 0.f;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(q[i]));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    for (size_t i = b; i < b + 32; ++i) {
      const float q1 = round127(q[i] * id), q2 = round127(std::fma(-d, q1, q[i]) * (256.f * id));
      out[i] = static_cast<float>(double(d) * q1 + double(d) / 256 * q2);
    }
  }
  return out;
}

// The int8-weights value kernel (attention_kv.h attend_group_int8_weights) recomputed from the
// weights it left in `scores` (nq rows of n), before 1 / sum: per chunk of kQ8ValueChunk
// positions and head, mx = max_j e_j dmax_j (dmax_j: the row's largest block scale), u8 weights
// round(e_j * (255 / mx) * d_jb) (nearest even), exact integer sums with the quants, and
// f = fma(sum, mx / 255, f) chunk after chunk. Bitwise what the kernel computes.
std::vector<float> int8_weights_values(const float* e, int64_t nq, const Rows& v, int64_t n, int64_t hd) {
  std::vector<float> f(nq * hd, 0.f);
  const int64_t nb = hd / 32;
  for (int64_t j0 = 0; j0 < n; j0 += kQ8ValueChunk) {
    const int64_t j1 = std::min(n, j0 + kQ8ValueChunk);
    for (int64_t g = 0; g < nq; ++g) {
      float mx = 0.f;
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t b = 0; b < nb; ++b) mx = std::max(mx, e[g * n + j] * v.scale(j, b));
      const float inv = mx > 0.f ? 255.f / mx : 0.f;
      for (int64_t i = 0; i < hd; ++i) {
        int32_t acc = 0;
        for (int64_t j = j0; j < j1; ++j) {
          const float w = std::nearbyint((e[g * n + j] * inv) * v.scale(j, i / 32));
          acc += static_cast<int32_t>(std::min(255.f, w)) * v.quant(j, i);
        }
        f[g * hd + i] = std::fma(static_cast<float>(acc), mx / 255.f, f[g * hd + i]);
      }
    }
  }
  return f;
}

// Bound on |int8-weights result - exact| for one head with probabilities p (normalised): each
// u8 weight is off by at most half its chunk's step (plus the kernel's exp error, 1e-3 of it).
std::vector<double> int8_weights_bound(const std::vector<double>& p, const Rows& v, int64_t n, int64_t hd) {
  std::vector<double> bound(hd, 0.0);
  const int64_t nb = hd / 32;
  for (int64_t j0 = 0; j0 < n; j0 += kQ8ValueChunk) {
    const int64_t j1 = std::min(n, j0 + kQ8ValueChunk);
    double mx = 0;
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t b = 0; b < nb; ++b) mx = std::max(mx, p[j] * v.scale(j, b));
    for (int64_t i = 0; i < hd; ++i)
      for (int64_t j = j0; j < j1; ++j) bound[i] += mx / 255 * 0.501 * std::abs(v.quant(j, i));
  }
  return bound;
}

TEST(AttentionKv, GroupMatchesReferenceEveryTypePair) {
  // Sizes: vector tails (hd 7, 33, 80), tiles of rows (4096 / hd rows: n = 100 spans two
  // tiles at hd 64, n = 300 several at hd 32 and 256), 1..7 query heads per KV head.
  struct Case {
    int64_t hd, n, nq;
  };
  // The int8 path (Q8_0 keys) takes 16 keys per pass: n = 48 is whole passes, 37 / 61 / 300
  // leave tails, n < 16 is a tail alone; nq = 18 is over the 16 heads it keeps in registers.
  // The fp32 tiles (kernels_attn_group-inl.h) take heads in pairs and rows in fours: odd nq
  // leaves a head alone, n % 4 leaves rows; {128, 67, 5} also crosses two row tiles with both.
  // n = 600 and nq = 70 are sizes a chunked kernel (256 positions, 64 heads per pass) would split.
  const Case cases[] = {{1, 5, 3},    {7, 17, 2},   {33, 100, 3}, {80, 61, 2},  {32, 300, 7},
                        {64, 100, 6}, {96, 1, 4},   {128, 37, 7}, {128, 4, 1},  {256, 33, 2},
                        {64, 48, 18}, {128, 16, 6}, {128, 67, 5}, {40, 11, 3},  {128, 600, 6},
                        {32, 300, 70}};
  // With VNNI allowed and not, so that on a VNNI CPU both AVX3 paths run.
  for (bool vnni : {true, false}) {
  set_vnni_allowed(vnni);
  for_each_isa([&](const std::string& isa) {
    for (TensorType kt : kKvTypes)
      for (TensorType vt : kKvTypes)
        for (const Case& c : cases) {
          const bool blocked = io::traits(kt).block_elems > 1 || io::traits(vt).block_elems > 1;
          if (blocked && c.hd % 32 != 0) continue;
          // Rows padded (other heads between them) and contiguous (the cache's layout, which the
          // int8 kernels take with a compile-time stride at hd 64 and 128).
          for (const size_t pad : {size_t{6}, size_t{0}})
          for (float softcap : {0.f, 5.f}) {
            if (pad == 0 && softcap > 0) continue;
            const uint32_t seed = static_cast<uint32_t>(c.hd * 1000 + c.n * 10 + c.nq);
            Rows k(kt, c.n, c.hd, pad, 1, seed, -2, 2), v(vt, c.n, c.hd, pad ? 10 : 0, 3, seed + 1, -1, 1);
            const auto q = random_floats(c.nq * c.hd, seed + 2);
            Misaligned qb(c.nq * c.hd * 4, 4), ob(c.nq * c.hd * 4, 8);
            std::memcpy(qb.data(), q.data(), q.size() * 4);
            std::vector<float> scores(c.nq * c.n);
            const float scale = 1.f / std::sqrt(static_cast<float>(c.hd));
            attend_group_kv(qb.floats(), c.nq, k.view, v.view, c.n, c.hd, scale, softcap, scores.data(),
                            ob.floats());
            // The int8 path is compared with the reference over the query it quantized; int8
            // weights within the bound their rounding allows.
            const bool int8 = attend_group_int8_query(kt), int8w = attend_group_int8_weights(vt);
            const auto qr = int8 ? quantized_query(q) : q;
            for (int64_t g = 0; g < c.nq; ++g) {
              const auto ref = reference_head(&qr[g * c.hd], k, v, c.n, c.hd, scale, softcap);
              std::vector<double> tol(c.hd, 3e-5);
              if (int8w) {
                const auto b = int8_weights_bound(reference_probs(&qr[g * c.hd], k, c.n, c.hd, scale, softcap), v,
                                                  c.n, c.hd);
                for (int64_t i = 0; i < c.hd; ++i) tol[i] += b[i];
              }
              for (int64_t i = 0; i < c.hd; ++i)
                ASSERT_NEAR(ob.floats()[g * c.hd + i], ref[i], tol[i])
                    << isa << " k=" << io::type_name(kt) << " v=" << io::type_name(vt) << " hd=" << c.hd
                    << " n=" << c.n << " nq=" << c.nq << " g=" << g << " cap=" << softcap << " i=" << i
                    << " int8=" << int8 << " int8w=" << int8w << " pad=" << pad;
            }
            if (!int8w) continue;
            // Bitwise the scalar recomputation from the kernel's weights, up to the 1 / sum.
            const auto f = int8_weights_values(scores.data(), c.nq, v, c.n, c.hd);
            for (int64_t g = 0; g < c.nq; ++g) {
              double sum = 0;
              for (int64_t j = 0; j < c.n; ++j) sum += scores[g * c.n + j];
              const double inv = softcap > 0 ? 1.0 : 1.0 / sum;
              for (int64_t i = 0; i < c.hd; ++i)
                ASSERT_NEAR(ob.floats()[g * c.hd + i], f[g * c.hd + i] * inv, 1e-6 + 1e-5 * std::abs(f[g * c.hd + i] * inv))
                    << isa << " k=" << io::type_name(kt) << " hd=" << c.hd << " n=" << c.n << " nq=" << c.nq
                    << " g=" << g << " cap=" << softcap << " i=" << i;
            }
          }
        }
  });
  }
  set_vnni_allowed(true);
}

TEST(AttentionKv, GroupPeakedScoresStayExact) {
  // Scores in the hundreds: exp without the max shift overflows, and the probabilities span
  // far more than fp32's range, so a softmax that is not shifted, or a wrong max, fails here.
  // n = 700: a kernel in chunks of positions would rescale what earlier chunks summed when a
  // head's max lies in a later one (by an exp that underflows to 0).
  const int64_t hd = 128, nq = 6;
  for (int64_t n : {203, 700})
  for_each_isa([&](const std::string& isa) {
    for (TensorType kt : kKvTypes)
      for (TensorType vt : {TensorType::F32, TensorType::Q8_0}) {
        Rows k(kt, n, hd, 0, 0, 7, -2, 2), v(vt, n, hd, 2, 1, 8, -1, 1);
        auto q = random_floats(nq * hd, 9);
        for (float& x : q) x *= 10.f;
        std::vector<float> scores(nq * n), out(nq * hd);
        attend_group_kv(q.data(), nq, k.view, v.view, n, hd, 1.f, 0.f, scores.data(), out.data());
        const auto qr = attend_group_int8_query(kt) ? quantized_query(q) : q;
        for (int64_t g = 0; g < nq; ++g) {
          const auto ref = reference_head(&qr[g * hd], k, v, n, hd, 1.f, 0.f);
          std::vector<double> tol(hd, 1e-4);
          if (attend_group_int8_weights(vt)) {
            const auto b = int8_weights_bound(reference_probs(&qr[g * hd], k, n, hd, 1.f, 0.f), v, n, hd);
            for (int64_t i = 0; i < hd; ++i) tol[i] += b[i];
          }
          for (int64_t i = 0; i < hd; ++i)
            ASSERT_NEAR(out[g * hd + i], ref[i], tol[i])
                << isa << " k=" << io::type_name(kt) << " v=" << io::type_name(vt) << " n=" << n << " g=" << g
            << " i=" << i;
        }
      }
  });
}

TEST(AttentionKv, Int8QueryOnlyWithVnniOutsideExactMode) {
  // Which path runs is part of the contract the model's accuracy depends on.
  IsaGuard guard;
  const bool exact = exact_activations();
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    EXPECT_FALSE(attend_group_int8_query(TensorType::F32));
    EXPECT_FALSE(attend_group_int8_query(TensorType::F16));
    EXPECT_FALSE(attend_group_int8_query(TensorType::Q4_0));
    for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::Q4_0})
      EXPECT_FALSE(attend_group_int8_weights(t));
    const bool q8 = attend_group_int8_query(TensorType::Q8_0);
    EXPECT_EQ(q8, isa == "avx3" && use_vnni() && !exact) << isa;
    EXPECT_EQ(attend_group_int8_weights(TensorType::Q8_0), q8) << isa;
    set_exact_activations(true);
    EXPECT_FALSE(attend_group_int8_query(TensorType::Q8_0)) << isa;
    EXPECT_FALSE(attend_group_int8_weights(TensorType::Q8_0)) << isa;
    set_exact_activations(exact);
    set_vnni_allowed(false);
    EXPECT_FALSE(attend_group_int8_query(TensorType::Q8_0)) << isa;
    EXPECT_FALSE(attend_group_int8_weights(TensorType::Q8_0)) << isa;
    set_vnni_allowed(true);
  }
}

TEST(AttentionKv, GroupRejectsBadArguments) {
  std::vector<uint8_t> rows(1 << 16);
  std::vector<float> q(2 * 8192), scores(8), out(2 * 8192);
  const KvRows f32{TensorType::F32, rows.data(), 256};
  EXPECT_THROW(attend_group_kv(q.data(), 0, f32, f32, 2, 64, 1.f, 0.f, scores.data(), out.data()), InvalidArgument);
  EXPECT_THROW(attend_group_kv(q.data(), 2, {TensorType::Q4_0, rows.data(), 64}, f32, 2, 48, 1.f, 0.f,
                               scores.data(), out.data()),
               InvalidArgument);
  const KvRows wide{TensorType::F32, rows.data(), 8192 * 4};
  EXPECT_THROW(attend_group_kv(q.data(), 1, wide, wide, 1, 8192, 1.f, 0.f, scores.data(), out.data()),
               InvalidArgument);
}

TEST(AttentionKv, F32RowsEqualAttendHead) {
  // The float-pointer entry point is the same kernel: bitwise equal results.
  const int64_t hd = 64, n = 37, stride = 128;
  const auto q = random_floats(hd, 1), k = random_floats(n * stride, 2), v = random_floats(n * stride, 3);
  std::vector<float> s1(n), s2(n), o1(hd), o2(hd);
  attend_head(q.data(), k.data(), v.data(), stride, n, hd, 0.125f, 0.f, s1.data(), o1.data());
  const size_t bytes = stride * sizeof(float);
  attend_head_kv(q.data(), {TensorType::F32, k.data(), bytes}, {TensorType::F32, v.data(), bytes}, n, hd, 0.125f,
                 0.f, s2.data(), o2.data());
  for (int64_t i = 0; i < hd; ++i) ASSERT_EQ(o1[i], o2[i]) << i;
}

TEST(AttentionKv, RejectsBadArguments) {
  std::vector<uint8_t> rows(4096);
  std::vector<float> q(64), scores(4), out(64);
  const KvRows f32{TensorType::F32, rows.data(), 256};
  // A block type whose blocks would span heads.
  EXPECT_THROW(attend_head_kv(q.data(), {TensorType::Q8_0, rows.data(), 64}, f32, 2, 48, 1.f, 0.f, scores.data(),
                              out.data()),
               InvalidArgument);
  // A type the cache does not store.
  EXPECT_THROW(attend_head_kv(q.data(), f32, {TensorType::Q4_K, rows.data(), 256}, 2, 64, 1.f, 0.f, scores.data(),
                              out.data()),
               InvalidArgument);
  // Rows closer than one row.
  EXPECT_THROW(attend_head_kv(q.data(), {TensorType::F16, rows.data(), 100}, f32, 2, 64, 1.f, 0.f, scores.data(),
                              out.data()),
               InvalidArgument);
  EXPECT_FALSE(kv_type_supported(TensorType::BF16));
  EXPECT_TRUE(kv_type_supported(TensorType::Q4_0));
}

}  // namespace
}  // namespace edgellm::ops
