// Element-wise ops against plain double-precision loops written here, on every ISA, with
// lengths that leave vector tails and misaligned pointers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"

namespace edgellm::ops {
namespace {
using testing::for_each_isa;
using testing::Misaligned;
using testing::random_floats;

const int64_t kLens[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 576, 1023};

// Copies v into a buffer misaligned by `off` floats (4-byte steps; floats need alignment 4).
struct Buf {
  Buf(const std::vector<float>& v, size_t off) : m(v.size() * 4, off * 4) {
    std::memcpy(m.data(), v.data(), v.size() * 4);
  }
  float* p() { return m.floats(); }
  Misaligned m;
};

TEST(Elementwise, RmsNorm) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : kLens)
      for (bool with_w : {true, false}) {
        auto x = random_floats(n, 1 + n, -3, 3), w = random_floats(n, 2 + n);
        Buf bx(x, n % 5), bo(std::vector<float>(n), 1);
        rmsnorm(bx.p(), with_w ? w.data() : nullptr, bo.p(), n, 1e-5f);
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const double s = 1.0 / std::sqrt(ss / n + 1e-5);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(bo.p()[i], x[i] * s * (with_w ? w[i] : 1.0), 1e-5 * (1 + std::fabs(x[i] * s))) << isa << " n=" << n;
        rmsnorm(bx.p(), w.data(), bx.p(), n, 1e-5f);  // in place
        for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(bx.p()[i], x[i] * s * w[i], 1e-5 * (1 + std::fabs(x[i] * s)));
      }
  });
}

TEST(Elementwise, Softmax) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : kLens) {
      auto x = random_floats(n, 3 + n, -20, 20);
      x[0] = -INFINITY;  // masked entry
      if (n == 1) x[0] = 5;
      Buf b(x, 3);
      softmax(b.p(), n);
      double mx = -INFINITY, sum = 0;
      for (float v : x) mx = std::max(mx, double(v));
      for (float v : x) sum += std::exp(v - mx);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(b.p()[i], std::exp(x[i] - mx) / sum, 2e-6) << isa << " n=" << n;
    }
  });
}

// The sampler's vocabulary passes: max with NaN/+inf detection, and exp sums over a floor.
TEST(Elementwise, MaxCheckedAndExpSums) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : kLens) {
      auto x = random_floats(n, 5 + n, -30, 30);
      if (n > 2) x[n / 2] = -INFINITY;  // masked logits: never counted
      Buf b(x, n % 3);
      int64_t bad = 7;
      const float mx = max_checked(b.p(), n, &bad);
      EXPECT_EQ(bad, -1) << isa;
      double ref_mx = -INFINITY;
      for (float v : x) ref_mx = std::max(ref_mx, double(v));
      ASSERT_EQ(mx, ref_mx) << isa << " n=" << n;
      for (const float floor : {std::numeric_limits<float>::lowest(), -5.0f, 29.0f}) {
        for (const double scale : {1.0, 1.0 / 0.7}) {
          double se = 0.5, sed = 0.25;  // sums are added to what is there
          exp_sums(b.p(), n, mx, scale, floor, &se, &sed);
          double re = 0.5, red = 0.25;
          for (float v : x)
            if (v >= floor) {
              const double dx = double(v) - mx, e = std::exp(dx * scale);
              re += e, red += e * dx;
            }
          ASSERT_NEAR(se, re, 1e-13 * std::fabs(re)) << isa << " n=" << n << " floor=" << floor;
          ASSERT_NEAR(sed, red, 1e-12 * (1 + std::fabs(red))) << isa << " n=" << n << " floor=" << floor;
          double only = 0;
          exp_sums(b.p(), n, mx, scale, floor, &only, nullptr);
          ASSERT_NEAR(only, re - 0.5, 1e-13 * std::fabs(re)) << isa;
        }
      }
      // The first NaN or +inf is found wherever it sits, tails included.
      for (const float poison : {NAN, INFINITY}) {
        auto y = x;
        y[n - 1] = poison;
        if (n > 4) y[n - 3] = poison;
        Buf c(y, 1);
        max_checked(c.p(), n, &bad);
        EXPECT_EQ(bad, n > 4 ? n - 3 : n - 1) << isa << " n=" << n;
      }
    }
  });
}

TEST(Elementwise, DotAxpyAddScale) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : kLens) {
      auto a = random_floats(n, 5 + n), b = random_floats(n, 6 + n);
      Buf ba(a, 1), bb(b, 2);
      double ref = 0, sabs = 0;
      for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i], sabs += std::fabs(double(a[i]) * b[i]);
      ASSERT_NEAR(dot_f32(ba.p(), bb.p(), n), ref, 1e-6 * (sabs + 1)) << isa << " n=" << n;
      axpy_f32(0.5f, ba.p(), bb.p(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(bb.p()[i], b[i] + 0.5 * a[i], 1e-6);
      Buf bo(std::vector<float>(n), 3);
      add_f32(ba.p(), ba.p(), bo.p(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bo.p()[i], 2 * a[i]);
      scale_f32(bo.p(), 0.25f, n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(bo.p()[i], 0.5f * a[i]);
    }
  });
}

TEST(Elementwise, SiluMulGeluMul) {
  for_each_isa([](const std::string& isa) {
    for (int64_t n : kLens) {
      auto g = random_floats(n, 7 + n, -12, 12), u = random_floats(n, 8 + n, -2, 2);
      Buf bg(g, 1), bu(u, 2), bo(std::vector<float>(n), 3);
      silu_mul(bg.p(), bu.p(), bo.p(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = g[i] / (1 + std::exp(-double(g[i]))) * u[i];
        ASSERT_NEAR(bo.p()[i], ref, 1e-5 * (1 + std::fabs(ref))) << isa << " silu n=" << n << " g=" << g[i];
      }
      gelu_mul(bg.p(), bu.p(), bo.p(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double v = g[i];
        const double ref = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))) * u[i];
        ASSERT_NEAR(bo.p()[i], ref, 1e-5 * (1 + std::fabs(ref))) << isa << " gelu n=" << n << " g=" << g[i];
      }
    }
  });
}

void rope_ref(std::vector<double>& h, int64_t n_rot, int64_t pos, double base, double scale, bool neox) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double theta = pos * scale * std::pow(base, -2.0 * i / n_rot);
    const int64_t a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
    const double x0 = h[a], x1 = h[b];
    h[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
    h[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
  }
}

TEST(Elementwise, Rope) {
  for_each_isa([](const std::string& isa) {
    for (bool neox : {false, true})
      for (int64_t hd : {64, 128, 80})
        for (int64_t n_rot : {hd, hd / 2})
          for (int64_t pos : {0, 1, 17, 4095}) {
            auto x = random_floats(hd, 9 + hd + pos);
            std::vector<double> ref(x.begin(), x.end());
            rope_ref(ref, n_rot, pos, 100000.0, 0.5, neox);
            Buf b(x, 1);
            rope(b.p(), hd, n_rot, pos, 100000.f, 0.5f, neox);
            // fp32 angle = pos*scale*base^(-2i/d): relative error ~1e-7 of up to ~2000 rad.
            const double tol = 2e-7 * pos + 1e-5;
            for (int64_t i = 0; i < hd; ++i)
              ASSERT_NEAR(b.p()[i], ref[i], tol) << isa << " neox=" << neox << " hd=" << hd << " rot=" << n_rot << " pos=" << pos << " i=" << i;
          }
  });
}

}  // namespace
TEST(Elementwise, RopeTableEqualsRope) {
  // The shared-angle form must give exactly what rope() gives (the model uses it).
  for (bool neox : {false, true})
    for (int64_t hd : {64, 80})
      for (int64_t pos : {0, 5, 3000}) {
        auto x = random_floats(hd, 11 + hd + pos);
        auto y = x;
        rope(x.data(), hd, hd, pos, 10000.f, 1.f, neox);
        std::vector<float> cs(hd);
        rope_cos_sin(hd, pos, 10000.f, 1.f, cs.data());
        rope_apply(y.data(), hd, hd, cs.data(), neox);
        for (int64_t i = 0; i < hd; ++i) ASSERT_EQ(x[i], y[i]) << "neox=" << neox << " pos=" << pos << " i=" << i;
      }
}

TEST(Elementwise, AttendHead) {
  for_each_isa([](const std::string& isa) {
    for (int64_t hd : {1, 7, 33, 64, 80})
      for (int64_t n : {1, 3, 4, 5, 17, 100})
        for (float softcap : {0.f, 5.f}) {
          const int64_t stride = hd + 3;  // rows of a KV cache with other heads in between
          auto q = random_floats(hd, 20 + hd), k = random_floats(n * stride, 21 + n, -2, 2),
               v = random_floats(n * stride, 22 + n);
          Buf bq(q, 1), bk(k, 2), bv(v, 3), bo(std::vector<float>(hd), 1);
          std::vector<float> scores(n);
          const float scale = 0.37f;
          attend_head(bq.p(), bk.p(), bv.p(), stride, n, hd, scale, softcap, scores.data(), bo.p());
          std::vector<double> s(n);
          double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < n; ++j) {
            double d = 0;
            for (int64_t i = 0; i < hd; ++i) d += double(q[i]) * k[j * stride + i];
            d *= scale;
            if (softcap > 0) d = softcap * std::tanh(d / softcap);
            s[j] = d, mx = std::max(mx, d);
          }
          for (auto& e : s) e = std::exp(e - mx), sum += e;
          for (int64_t i = 0; i < hd; ++i) {
            double ref = 0;
            for (int64_t j = 0; j < n; ++j) ref += s[j] / sum * v[j * stride + i];
            ASSERT_NEAR(bo.p()[i], ref, 2e-5) << isa << " hd=" << hd << " n=" << n << " cap=" << softcap << " i=" << i;
          }
        }
  });
}

}  // namespace edgellm::ops
