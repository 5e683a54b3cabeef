#include "train/grad_ops.h"

#include <algorithm>
#include <cmath>

namespace edgellm::train {
namespace {

constexpr int64_t kTileRows = 16;  // W rows dequantized at once per thread (tens of KB: stays in L2)

template <typename Fn>
void split(ops::ThreadPool& pool, int64_t n, Fn&& fn) {
  if (n <= 1 || pool.size() == 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int th) { fn(b, e, th); });
}

}  // namespace

void matmul_t_add(const ops::MatrixView& W, const float* dy, int64_t T, float* dx, ops::ThreadPool& pool) {
  const int64_t n_in = W.n_in, n_out = W.n_out;
  // Rows one matrix_row call unpacks; divides kTileRows.
  const int64_t group = W.layout == ops::Layout::X16 ? 16
                        : W.layout == ops::Layout::K8 ? 8
                        : W.layout == ops::Layout::X4 ? 4
                                                      : 1;
  // Tokens are split over the threads; each thread dequantizes every tile itself (dequantizing
  // costs a few operations per weight, the products T of them) and never shares a dx row.
  split(pool, T, [&](int64_t t0, int64_t t1, int) {
    std::vector<uint8_t> raw;
    std::vector<float> tile(static_cast<size_t>(kTileRows * n_in));
    for (int64_t r0 = 0; r0 < n_out; r0 += kTileRows) {
      const int64_t nr = std::min(kTileRows, n_out - r0);
      // A repacked matrix unpacks a group of rows per matrix_row call: one call per group.
      const uint8_t* row = nullptr;
      for (int64_t r = 0; r < nr; ++r) {
        const int64_t i = r0 + r;
        if (W.layout == ops::Layout::Rows || i % group == 0) row = ops::matrix_row(W, i, raw);
        else row += W.row_stride;
        ops::dequantize_row(W.type, row, &tile[r * n_in], n_in);
      }
      for (int64_t t = t0; t < t1; ++t) {
        const float* g = dy + t * n_out + r0;
        float* d = dx + t * n_in;
        for (int64_t r = 0; r < nr; ++r)
          if (g[r] != 0.0f) ops::axpy_f32(g[r], &tile[r * n_in], d, n_in);
      }
    }
  });
}

void lora_forward(const LoraFactor& f, float s, const float* x, int64_t T, float* u, float* y, ops::ThreadPool& pool) {
  const int64_t r = f.rank;
  split(pool, T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* ut = u + t * r;
      for (int64_t j = 0; j < r; ++j) ut[j] = ops::dot_f32(&f.a[j * f.n_in], x + t * f.n_in, f.n_in);
      for (int64_t j = 0; j < r; ++j) ops::axpy_f32(s * ut[j], &f.bt[j * f.n_out], y + t * f.n_out, f.n_out);
    }
  });
}

void lora_backward(LoraFactor& f, float s, const float* x, const float* u, const float* dy, int64_t T, float* dx,
                   ops::ThreadPool& pool, std::vector<float>& scratch) {
  const int64_t r = f.rank, n_in = f.n_in, n_out = f.n_out;
  if (scratch.size() < static_cast<size_t>(T * r)) scratch.resize(static_cast<size_t>(T * r));
  float* du = scratch.data();  // [T][r] = s·B^T·dy
  split(pool, T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t j = 0; j < r; ++j) du[t * r + j] = s * ops::dot_f32(&f.bt[j * n_out], dy + t * n_out, n_out);
  });
  // dB^T[j] += s·Σ_t u[t][j]·dy[t];  dA[j] += Σ_t du[t][j]·x[t]. One row of each per task.
  split(pool, 2 * r, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t j = i % r;
      if (i < r) {
        for (int64_t t = 0; t < T; ++t) ops::axpy_f32(s * u[t * r + j], dy + t * n_out, &f.gbt[j * n_out], n_out);
      } else {
        for (int64_t t = 0; t < T; ++t) ops::axpy_f32(du[t * r + j], x + t * n_in, &f.ga[j * n_in], n_in);
      }
    }
  });
  split(pool, T, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t j = 0; j < r; ++j) ops::axpy_f32(du[t * r + j], &f.a[j * n_in], dx + t * n_in, n_in);
  });
}

void rmsnorm_backward(const float* x, const float* w, const float* dy, float* dx, int64_t n, float eps) {
  double ss = 0.0, dot = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    ss += static_cast<double>(x[i]) * x[i];
    dot += static_cast<double>(x[i]) * dy[i] * (w ? w[i] : 1.0f);
  }
  const double rinv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  const double k = dot * rinv * rinv * rinv / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    dx[i] += static_cast<float>(rinv * dy[i] * (w ? w[i] : 1.0f) - x[i] * k);
}

void glu_backward(bool gelu, const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                  int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    double act, dact;
    if (gelu) {
      const double c = std::sqrt(2.0 / M_PI);
      const double z = c * (g + 0.044715 * g * g * g);
      const double th = std::tanh(z);
      act = 0.5 * g * (1.0 + th);
      dact = 0.5 * (1.0 + th) + 0.5 * g * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * g * g);
    } else {
      const double sg = 1.0 / (1.0 + std::exp(-g));
      act = g * sg;
      dact = sg * (1.0 + g * (1.0 - sg));
    }
    dgate[i] = static_cast<float>(dout[i] * up[i] * dact);
    dup[i] = static_cast<float>(dout[i] * act);
  }
}

namespace {
int64_t first_visible(const AttentionShape& s, int64_t i) { return s.window > 0 ? std::max<int64_t>(0, i - s.window + 1) : 0; }
}  // namespace

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v, float* out,
                       float* probs, ops::ThreadPool& pool) {
  const int64_t T = s.T, H = s.n_head, hd = s.hd, qd = H * hd, kvd = s.n_head_kv * hd;
  const int64_t group = H / s.n_head_kv;
  split(pool, H * T, [&](int64_t b, int64_t e, int) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t h = task / T, i = task % T, kh = h / group;
      float* p = probs + (h * T + i) * T;
      std::fill(p, p + T, 0.0f);
      const int64_t lo = first_visible(s, i);
      const float* qi = q + i * qd + h * hd;
      float mx = -INFINITY;
      for (int64_t j = lo; j <= i; ++j) {
        float sc = s.scale * ops::dot_f32(qi, k + j * kvd + kh * hd, hd);
        if (s.softcap > 0) sc = s.softcap * std::tanh(sc / s.softcap);
        p[j] = sc;
        mx = std::max(mx, sc);
      }
      double sum = 0.0;
      for (int64_t j = lo; j <= i; ++j) {
        p[j] = std::exp(p[j] - mx);
        sum += p[j];
      }
      float* o = out + i * qd + h * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j = lo; j <= i; ++j) {
        p[j] = static_cast<float>(p[j] / sum);
        ops::axpy_f32(p[j], v + j * kvd + kh * hd, o, hd);
      }
    }
  });
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v, const float* probs,
                        const float* dout, float* dq, float* dk, float* dv, ops::ThreadPool& pool) {
  const int64_t T = s.T, H = s.n_head, hd = s.hd, qd = H * hd, kvd = s.n_head_kv * hd;
  const int64_t group = H / s.n_head_kv;
  std::fill(dq, dq + T * qd, 0.0f);
  std::fill(dk, dk + T * kvd, 0.0f);
  std::fill(dv, dv + T * kvd, 0.0f);
  // One task per kv head: the query heads of its group write only their own dq and this head's dk/dv.
  split(pool, s.n_head_kv, [&](int64_t b, int64_t e, int) {
    std::vector<float> ds(static_cast<size_t>(T));
    for (int64_t kh = b; kh < e; ++kh)
      for (int64_t h = kh * group; h < (kh + 1) * group; ++h)
        for (int64_t i = 0; i < T; ++i) {
          const float* p = probs + (h * T + i) * T;
          const float* go = dout + i * qd + h * hd;
          const float* qi = q + i * qd + h * hd;
          const int64_t lo = first_visible(s, i);
          double pd = 0.0;
          for (int64_t j = lo; j <= i; ++j) {
            ds[j] = ops::dot_f32(go, v + j * kvd + kh * hd, hd);  // dP
            pd += static_cast<double>(p[j]) * ds[j];
            ops::axpy_f32(p[j], go, dv + j * kvd + kh * hd, hd);
          }
          for (int64_t j = lo; j <= i; ++j) {
            float g = static_cast<float>(p[j] * (ds[j] - pd));  // d(capped score)
            if (s.softcap > 0) {
              const float th = std::tanh(s.scale * ops::dot_f32(qi, k + j * kvd + kh * hd, hd) / s.softcap);
              g *= 1.0f - th * th;
            }
            g *= s.scale;
            ops::axpy_f32(g, k + j * kvd + kh * hd, dq + i * qd + h * hd, hd);
            ops::axpy_f32(g, qi, dk + j * kvd + kh * hd, hd);
          }
        }
  });
}

}  // namespace edgellm::train
