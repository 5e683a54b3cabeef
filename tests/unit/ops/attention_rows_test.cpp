// attention_rows (full multi-head attention of many query rows) against a double-precision
// scalar reference on every ISA: query counts that leave partial register tiles and partial
// query blocks, key counts that leave vector tails, head sizes under, at and above a vector,
// fused-QKV strides with padding, misaligned buffers, one and two threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ops/attention_rows.h"
#include "ops/ops.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::ops {
namespace {
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

// out[i][h] for the same layout attention_rows reads, in double.
std::vector<double> reference(const float* q, size_t qs, const float* k, size_t ks, const float* v, size_t vs,
                              int64_t n_q, int64_t n_kv, int64_t H, int64_t hd, float scale) {
  std::vector<double> out(static_cast<size_t>(n_q * H * hd)), s(n_kv);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < n_q; ++i) {
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n_kv; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < hd; ++e) dot += double(q[i * qs + h * hd + e]) * k[j * ks + h * hd + e];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < n_kv; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int64_t e = 0; e < hd; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < n_kv; ++j) acc += s[j] / sum * v[j * vs + h * hd + e];
        out[(i * H + h) * hd + e] = acc;
      }
    }
  return out;
}

void check(int64_t n_q, int64_t n_kv, int64_t H, int64_t hd, size_t pad, size_t off, ThreadPool& pool,
           const std::string& isa) {
  const int64_t w = H * hd;
  // One fused buffer [n][3w + pad] as an encoder's QKV rows (keys and values only the first n_kv).
  const size_t st = static_cast<size_t>(3 * w) + pad;
  const int64_t rows = std::max(n_q, n_kv);
  const auto x = random_floats(rows * st, static_cast<uint32_t>(n_q * 7919 + n_kv * 31 + hd), -2.f, 2.f);
  Misaligned buf(x.size() * 4, off), ob(static_cast<size_t>(n_q) * (w + pad) * 4 + 4, off + 4);
  std::memcpy(buf.data(), x.data(), x.size() * 4);
  const float* qkv = buf.floats();
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  const size_t os = static_cast<size_t>(w) + pad;
  attention_rows(qkv, st, qkv + w, st, qkv + 2 * w, st, n_q, n_kv, H, hd, scale, ob.floats(), os, pool);
  const auto want = reference(x.data(), st, x.data() + w, st, x.data() + 2 * w, st, n_q, n_kv, H, hd, scale);
  for (int64_t i = 0; i < n_q; ++i)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t e = 0; e < hd; ++e) {
        const double ref = want[(i * H + h) * hd + e];
        const float got = ob.floats()[i * os + h * hd + e];
        ASSERT_NEAR(got, ref, 2e-5 * (1 + std::sqrt(double(hd))) + 1e-5 * std::abs(ref))
            << isa << " n_q " << n_q << " n_kv " << n_kv << " H " << H << " hd " << hd << " row " << i << " head "
            << h << " e " << e << " threads " << pool.size();
      }
}

TEST(AttentionRows, MatchesReferenceEveryIsa) {
  ThreadPool one(1), two(2);
  for_each_isa([&](const std::string& isa) {
    for (int64_t hd : {1, 7, 16, 33, 64, 80})
      for (int64_t n_q : {1, 5, 7, 13, 50})
        for (int64_t n_kv : {1, 3, 17, 40, 100}) {
          check(n_q, n_kv, 2, hd, 3, 4, two, isa);
          if (hd == 64 || hd == 7) check(n_q, n_kv, 1, hd, 0, 0, one, isa);
        }
  });
}

// Blocks of queries: more rows than one block (at 1500 keys a block is 36 rows) and a last
// partial block, as Whisper's encoder (1500 x 1500, hd 64) runs it.
TEST(AttentionRows, ManyQueryBlocks) {
  ThreadPool two(2);
  for_each_isa([&](const std::string& isa) { check(83, 1500, 2, 64, 5, 8, two, isa); });
}

TEST(AttentionRows, RejectsBadSizes) {
  ThreadPool one(1);
  std::vector<float> a(64), o(64);
  EXPECT_THROW(attention_rows(a.data(), 8, a.data(), 8, a.data(), 8, 0, 1, 1, 8, 1.f, o.data(), 8, one),
               InvalidArgument);
  EXPECT_THROW(attention_rows(a.data(), 8, a.data(), 8, a.data(), 8, 1, 0, 1, 8, 1.f, o.data(), 8, one),
               InvalidArgument);
  EXPECT_THROW(attention_rows(a.data(), 4, a.data(), 8, a.data(), 8, 1, 1, 1, 8, 1.f, o.data(), 8, one),
               InvalidArgument);
  EXPECT_THROW(attention_rows(a.data(), 8, a.data(), 8, a.data(), 8, 1, 1, 2, 8, 1.f, o.data(), 16, one),
               InvalidArgument);
  EXPECT_THROW(attention_rows(a.data(), 8, a.data(), 8, a.data(), 8, 1, 1, 1, 8, -1.f, o.data(), 8, one),
               InvalidArgument);
}

}  // namespace
}  // namespace edgellm::ops
