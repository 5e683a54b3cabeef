#include "ops/quant_ref.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/fp16.h"
#include "ops/quant_blocks.h"

namespace edgellm::ops::ref {
namespace {

using io::TensorType;

// ---- dequantization, one block at a time ----
void deq_q8_0(const BlockQ8_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int j = 0; j < QK; ++j) y[j] = d * b->qs[j];
}
void deq_q4_0(const BlockQ4_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = d * ((b->qs[j] & 0xF) - 8);
    y[j + 16] = d * ((b->qs[j] >> 4) - 8);
  }
}
void deq_q4_1(const BlockQ4_1* b, float* y) {
  const float d = f16_to_f32(b->d), m = f16_to_f32(b->m);
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = d * (b->qs[j] & 0xF) + m;
    y[j + 16] = d * (b->qs[j] >> 4) + m;
  }
}
int q5_value(const uint8_t* qs, uint32_t qh, int j) {  // 0..31, element j of 32
  const int lo = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}
void deq_q5_0(const BlockQ5_0* b, float* y) {
  const float d = f16_to_f32(b->d);
  const uint32_t qh = load_u32(b->qh);
  for (int j = 0; j < QK; ++j) y[j] = d * (q5_value(b->qs, qh, j) - 16);
}
void deq_q5_1(const BlockQ5_1* b, float* y) {
  const float d = f16_to_f32(b->d), m = f16_to_f32(b->m);
  const uint32_t qh = load_u32(b->qh);
  for (int j = 0; j < QK; ++j) y[j] = d * q5_value(b->qs, qh, j) + m;
}
void deq_q4_k(const BlockQ4_K* b, float* y) {
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  for (int c = 0; c < 4; ++c) {
    uint8_t sc0, m0, sc1, m1;
    k_scale_min(2 * c, b->scales, sc0, m0);
    k_scale_min(2 * c + 1, b->scales, sc1, m1);
    const uint8_t* q = b->qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d * sc0 * (q[l] & 0xF) - dmin * m0;
      y[64 * c + 32 + l] = d * sc1 * (q[l] >> 4) - dmin * m1;
    }
  }
}
void deq_q5_k(const BlockQ5_K* b, float* y) {
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  for (int c = 0; c < 4; ++c) {
    uint8_t sc0, m0, sc1, m1;
    k_scale_min(2 * c, b->scales, sc0, m0);
    k_scale_min(2 * c + 1, b->scales, sc1, m1);
    const uint8_t* q = b->qs + 32 * c;
    for (int l = 0; l < 32; ++l) {
      const int h0 = (b->qh[l] >> (2 * c)) & 1, h1 = (b->qh[l] >> (2 * c + 1)) & 1;
      y[64 * c + l] = d * sc0 * ((q[l] & 0xF) | (h0 << 4)) - dmin * m0;
      y[64 * c + 32 + l] = d * sc1 * ((q[l] >> 4) | (h1 << 4)) - dmin * m1;
    }
  }
}
void deq_q6_k(const BlockQ6_K* b, float* y) {
  const float d = f16_to_f32(b->d);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b->ql + 64 * n;
    const uint8_t* qh = b->qh + 32 * n;
    float* yy = y + 128 * n;
    for (int l = 0; l < 32; ++l) {
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      yy[l] = d * b->scales[(128 * n + l) / 16] * q1;
      yy[l + 32] = d * b->scales[(128 * n + l + 32) / 16] * q2;
      yy[l + 64] = d * b->scales[(128 * n + l + 64) / 16] * q3;
      yy[l + 96] = d * b->scales[(128 * n + l + 96) / 16] * q4;
    }
  }
}

// ---- quantization ----
void q_q8_0(const float* x, BlockQ8_0* b) {
  float amax = 0;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f, id = d != 0 ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  for (int j = 0; j < QK; ++j) b->qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
}
// Symmetric formats use the signed extreme as -2^(bits-1) so the full range is used.
float signed_extreme(const float* x, int n) {
  float amax = 0, mx = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      mx = x[j];
    }
  return mx;
}
void q_q4_0(const float* x, BlockQ4_0* b) {
  const float d = signed_extreme(x, QK) / -8.f, id = d != 0 ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::clamp(static_cast<int>(std::floor(x[j] * id + 8.5f)), 0, 15);
    const int q1 = std::clamp(static_cast<int>(std::floor(x[j + 16] * id + 8.5f)), 0, 15);
    b->qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}
void q_q5_0(const float* x, BlockQ5_0* b) {
  const float d = signed_extreme(x, QK) / -16.f, id = d != 0 ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::clamp(static_cast<int>(std::floor(x[j] * id + 16.5f)), 0, 31);
    const int q1 = std::clamp(static_cast<int>(std::floor(x[j + 16] * id + 16.5f)), 0, 31);
    b->qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  std::memcpy(b->qh, &qh, 4);
}
template <int kLevels, typename Block>
void q_offset(const float* x, Block* b, uint32_t* qh_out) {  // Q4_1 / Q5_1
  float mn = x[0], mx = x[0];
  for (int j = 1; j < QK; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  const float d = (mx - mn) / kLevels, id = d != 0 ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  b->m = f32_to_f16(mn);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(kLevels, static_cast<int>((x[j] - mn) * id + 0.5f));
    const int q1 = std::min(kLevels, static_cast<int>((x[j + 16] - mn) * id + 0.5f));
    b->qs[j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= static_cast<uint32_t>(q0 >> 4) << j;
    qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
  }
  if (qh_out) *qh_out = qh;
}

// K-quant with mins (Q4_K, Q5_K): per-32 affine fits, then the 8 scales and 8 mins are
// themselves quantized to 6 bits against the super-block d / dmin. Scales round up so the
// quantized step still spans each sub-block's range (no clipping); simple, not optimal.
// d and dmin come back by value: the blocks are packed, so a reference to their uint16_t
// fields may be misaligned (UBSan flagged the test that quantizes into misaligned buffers).
struct KScales {
  uint16_t d, dmin;
};
template <int kLevels>
KScales k_affine(const float* x, uint8_t* scales, uint8_t* q /*256 values 0..kLevels*/) {
  float s[8], m[8], smax = 0, mmax = 0;
  for (int j = 0; j < 8; ++j) {
    float lo = 0, hi = 0;  // min clamped to <= 0: the format subtracts a non-negative min
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, x[32 * j + l]);
      hi = std::max(hi, x[32 * j + l]);
    }
    s[j] = (hi - lo) / kLevels;
    m[j] = -lo;
    smax = std::max(smax, s[j]);
    mmax = std::max(mmax, m[j]);
  }
  const float d = f16_to_f32(f32_to_f16(smax / 63.f));
  const float dmin = f16_to_f32(f32_to_f16(mmax / 63.f));
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? static_cast<uint8_t>(std::clamp(std::ceil(s[j] / d), 0.f, 63.f)) : 0;
    mn[j] = dmin > 0 ? static_cast<uint8_t>(std::clamp(std::nearbyint(m[j] / dmin), 0.f, 63.f)) : 0;
  }
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    const float step = d * sc[j], off = dmin * mn[j];
    const float inv = step > 0 ? 1.f / step : 0.f;
    for (int l = 0; l < 32; ++l) {
      const float v = std::nearbyint((x[32 * j + l] + off) * inv);
      q[32 * j + l] = static_cast<uint8_t>(std::clamp(v, 0.f, static_cast<float>(kLevels)));
    }
  }
  return {f32_to_f16(smax / 63.f), f32_to_f16(mmax / 63.f)};
}
void q_q4_k(const float* x, BlockQ4_K* b) {
  uint8_t q[QK_K];
  const KScales ks = k_affine<15>(x, b->scales, q);
  b->d = ks.d, b->dmin = ks.dmin;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}
void q_q5_k(const float* x, BlockQ5_K* b) {
  uint8_t q[QK_K];
  const KScales ks = k_affine<31>(x, b->scales, q);
  b->d = ks.d, b->dmin = ks.dmin;
  std::memset(b->qh, 0, sizeof b->qh);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t a = q[64 * c + l], h = q[64 * c + 32 + l];
      b->qs[32 * c + l] = static_cast<uint8_t>((a & 0xF) | ((h & 0xF) << 4));
      b->qh[l] |= static_cast<uint8_t>(((a >> 4) << (2 * c)) | ((h >> 4) << (2 * c + 1)));
    }
}
void q_q6_k(const float* x, BlockQ6_K* b) {
  float s[16], smax = 0;
  for (int j = 0; j < 16; ++j) {
    float amax = 0;
    for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
    s[j] = amax / 31.f;
    smax = std::max(smax, s[j]);
  }
  const float d = f16_to_f32(f32_to_f16(smax / 127.f));
  b->d = f32_to_f16(smax / 127.f);
  uint8_t q[QK_K];
  for (int j = 0; j < 16; ++j) {
    const int sc = d > 0 ? static_cast<int>(std::clamp(std::ceil(s[j] / d), 0.f, 127.f)) : 0;
    b->scales[j] = static_cast<int8_t>(sc);
    const float inv = sc > 0 ? 1.f / (d * sc) : 0.f;
    for (int l = 0; l < 16; ++l) {
      const float v = std::nearbyint(x[16 * j + l] * inv);
      q[16 * j + l] = static_cast<uint8_t>(std::clamp(v, -32.f, 31.f) + 32);
    }
  }
  for (int n = 0; n < 2; ++n)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* qq = q + 128 * n;
      const uint8_t q1 = qq[l], q2 = qq[l + 32], q3 = qq[l + 64], q4 = qq[l + 96];
      b->ql[64 * n + l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      b->ql[64 * n + l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      b->qh[32 * n + l] =
          static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
}

template <typename Block, typename F>
void for_blocks(const void* src, int64_t n, int64_t per, F f) {
  const Block* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / per; ++i) f(b + i, i * per);
}
template <typename Block, typename F>
void for_blocks_out(void* dst, int64_t n, int64_t per, F f) {
  Block* b = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / per; ++i) f(b + i, i * per);
}

}  // namespace

bool supported(TensorType t) {
  switch (t) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16:
    case TensorType::Q8_0: case TensorType::Q4_0: case TensorType::Q4_1:
    case TensorType::Q5_0: case TensorType::Q5_1:
    case TensorType::Q4_K: case TensorType::Q5_K: case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize(TensorType t, const void* src, float* y, int64_t n) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(y, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(load_u16(static_cast<const uint8_t*>(src) + 2 * i));
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(load_u16(static_cast<const uint8_t*>(src) + 2 * i));
      return;
    case TensorType::Q8_0: for_blocks<BlockQ8_0>(src, n, QK, [&](auto* b, int64_t o) { deq_q8_0(b, y + o); }); return;
    case TensorType::Q4_0: for_blocks<BlockQ4_0>(src, n, QK, [&](auto* b, int64_t o) { deq_q4_0(b, y + o); }); return;
    case TensorType::Q4_1: for_blocks<BlockQ4_1>(src, n, QK, [&](auto* b, int64_t o) { deq_q4_1(b, y + o); }); return;
    case TensorType::Q5_0: for_blocks<BlockQ5_0>(src, n, QK, [&](auto* b, int64_t o) { deq_q5_0(b, y + o); }); return;
    case TensorType::Q5_1: for_blocks<BlockQ5_1>(src, n, QK, [&](auto* b, int64_t o) { deq_q5_1(b, y + o); }); return;
    case TensorType::Q4_K: for_blocks<BlockQ4_K>(src, n, QK_K, [&](auto* b, int64_t o) { deq_q4_k(b, y + o); }); return;
    case TensorType::Q5_K: for_blocks<BlockQ5_K>(src, n, QK_K, [&](auto* b, int64_t o) { deq_q5_k(b, y + o); }); return;
    case TensorType::Q6_K: for_blocks<BlockQ6_K>(src, n, QK_K, [&](auto* b, int64_t o) { deq_q6_k(b, y + o); }); return;
    default:
      return;
  }
}

void quantize(TensorType t, const float* x, void* dst, int64_t n) {
  switch (t) {
    case TensorType::F32:
      std::memcpy(dst, x, static_cast<size_t>(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(static_cast<uint8_t*>(dst) + 2 * i, &h, 2);
      }
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(static_cast<uint8_t*>(dst) + 2 * i, &h, 2);
      }
      return;
    case TensorType::Q8_0: for_blocks_out<BlockQ8_0>(dst, n, QK, [&](auto* b, int64_t o) { q_q8_0(x + o, b); }); return;
    case TensorType::Q4_0: for_blocks_out<BlockQ4_0>(dst, n, QK, [&](auto* b, int64_t o) { q_q4_0(x + o, b); }); return;
    case TensorType::Q4_1: for_blocks_out<BlockQ4_1>(dst, n, QK, [&](auto* b, int64_t o) { q_offset<15>(x + o, b, nullptr); }); return;
    case TensorType::Q5_0: for_blocks_out<BlockQ5_0>(dst, n, QK, [&](auto* b, int64_t o) { q_q5_0(x + o, b); }); return;
    case TensorType::Q5_1:
      for_blocks_out<BlockQ5_1>(dst, n, QK, [&](auto* b, int64_t o) {
        uint32_t qh;
        q_offset<31>(x + o, b, &qh);
        std::memcpy(b->qh, &qh, 4);
      });
      return;
    case TensorType::Q4_K: for_blocks_out<BlockQ4_K>(dst, n, QK_K, [&](auto* b, int64_t o) { q_q4_k(x + o, b); }); return;
    case TensorType::Q5_K: for_blocks_out<BlockQ5_K>(dst, n, QK_K, [&](auto* b, int64_t o) { q_q5_k(x + o, b); }); return;
    case TensorType::Q6_K: for_blocks_out<BlockQ6_K>(dst, n, QK_K, [&](auto* b, int64_t o) { q_q6_k(x + o, b); }); return;
    default:
      return;
  }
}

}  // namespace edgellm::ops::ref
