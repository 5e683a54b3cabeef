#include "ops/pack_k8.h"

#include <algorithm>
#include <cstring>

#include "ops/quant_blocks.h"

namespace edgellm::ops::k8 {
namespace {
using io::TensorType;

// One row's super-block decoded to 256 unsigned quants and its scales (Q4_K: 8 sc + 8 mn;
// Q6_K: 16 signed scales as bytes), plus d (and dmin) as raw fp16 bits.
struct Decoded {
  uint8_t q[256];
  uint8_t sc[16], mn[8];
  uint16_t d, dmin;
};

uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
constexpr uint32_t k4 = 0x0F0F0F0F, k2 = 0x03030303;

// Four quants per 32-bit word (loading a model repacks about a GB this way).
void decode(TensorType t, const uint8_t* b, Decoded& o) {
  if (t == TensorType::Q4_K) {
    std::memcpy(&o.d, b, 2);
    std::memcpy(&o.dmin, b + 2, 2);
    for (int j = 0; j < 8; ++j) k_scale_min(j, b + 4, o.sc[j], o.mn[j]);
    const uint8_t* qs = b + 16;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; l += 4) {
        const uint32_t w = load32(qs + 32 * c + l);
        store32(o.q + 64 * c + l, w & k4);
        store32(o.q + 64 * c + 32 + l, (w >> 4) & k4);
      }
  } else {  // Q6_K
    const uint8_t *ql = b, *qh = b + 128;
    std::memcpy(o.sc, b + 192, 16);
    std::memcpy(&o.d, b + 208, 2);
    for (int n = 0; n < 2; ++n)
      for (int l = 0; l < 32; l += 4) {
        const uint32_t l0 = load32(ql + 64 * n + l), l1 = load32(ql + 64 * n + 32 + l), h = load32(qh + 32 * n + l);
        store32(o.q + 128 * n + l, (l0 & k4) | (h & k2) << 4);
        store32(o.q + 128 * n + 32 + l, (l1 & k4) | ((h >> 2) & k2) << 4);
        store32(o.q + 128 * n + 64 + l, ((l0 >> 4) & k4) | ((h >> 4) & k2) << 4);
        store32(o.q + 128 * n + 96 + l, ((l1 >> 4) & k4) | ((h >> 6) & k2) << 4);
      }
  }
}

void encode(TensorType t, const Decoded& o, uint8_t* b) {
  if (t == TensorType::Q4_K) {
    std::memcpy(b, &o.d, 2);
    std::memcpy(b + 2, &o.dmin, 2);
    uint8_t* s = b + 4;
    for (int j = 0; j < 4; ++j) {
      s[j] = static_cast<uint8_t>((o.sc[j] & 63) | (o.sc[j + 4] >> 4) << 6);
      s[j + 4] = static_cast<uint8_t>((o.mn[j] & 63) | (o.mn[j + 4] >> 4) << 6);
      s[j + 8] = static_cast<uint8_t>((o.sc[j + 4] & 15) | (o.mn[j + 4] & 15) << 4);
    }
    uint8_t* qs = b + 16;
    std::memset(qs, 0, 128);
    for (int e = 0; e < 256; ++e) {
      const int c = e / 64, w = e % 64;
      qs[32 * c + w % 32] |= static_cast<uint8_t>(w < 32 ? o.q[e] : o.q[e] << 4);
    }
  } else {
    uint8_t *ql = b, *qh = b + 128;
    std::memset(b, 0, 192);
    for (int e = 0; e < 256; ++e) {
      const int n = e / 128, l = e % 32, quarter = e % 128 / 32;
      ql[64 * n + l + 32 * (quarter & 1)] |= static_cast<uint8_t>(quarter < 2 ? o.q[e] & 15 : (o.q[e] & 15) << 4);
      qh[32 * n + l] |= static_cast<uint8_t>((o.q[e] >> 4) << (2 * quarter));
    }
    std::memcpy(b + 192, o.sc, 16);
    std::memcpy(b + 208, &o.d, 2);
  }
}

// Offsets inside a K8 super-block (see pack_k8.h).
// Sub-block j's nibbles start at nib + sub * j, Q6_K's high bits at high + sub * j.
struct Offsets {
  size_t scales, mins, nib, high, sub;
};
Offsets offsets(TensorType t) {
  if (t == TensorType::Q4_K) return {32, 96, 160, 0, 128};
  return {16, 0, 144, 272, 192};
}
// Byte of the scales area holding sub-block j's (Q4_K) / 16-element sub-block k's (Q6_K) scale of row r.
// (Both formats order the bytes alike: Q4_K pairs sub-blocks 2P, 2P+1, Q6_K the two halves of j.)
int scale_pos(int k, int r) { return 16 * (k / 2) + 4 * (k % 2) + 8 * (r / 4) + r % 4; }
// Element (within its super-block) of byte i of q[j][v].
int elem(int j, int v, int i) { return 32 * j + 4 * v + i % 4; }
}  // namespace

bool packable(TensorType t) { return t == TensorType::Q4_K || t == TensorType::Q6_K; }

size_t block_bytes(TensorType t) { return t == TensorType::Q4_K ? 1184 : 1680; }

size_t group_bytes(TensorType t, int64_t n_in) { return block_bytes(t) * static_cast<size_t>(n_in / 256); }

void pack_group(TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst) {
  const size_t rb = t == TensorType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ6_K), kb = block_bytes(t);
  const Offsets off = offsets(t);
  const bool q6 = t == TensorType::Q6_K;
  Decoded dec[kRows];
  for (int64_t ib = 0; ib < n_in / 256; ++ib) {
    for (int r = 0; r < kRows; ++r)
      decode(t, rows + static_cast<size_t>(std::min(kRows * g + r, n_out - 1)) * row_stride + ib * rb, dec[r]);
    uint8_t* o = dst + ib * kb;
    for (int r = 0; r < kRows; ++r) {
      std::memcpy(o + 2 * r, &dec[r].d, 2);
      if (!q6) std::memcpy(o + 16 + 2 * r, &dec[r].dmin, 2);
      for (int k = 0; k < (q6 ? 16 : 8); ++k) o[off.scales + scale_pos(k, r)] = dec[r].sc[k];
      if (!q6)
        for (int j = 0; j < 8; ++j) o[off.mins + 8 * j + r] = dec[r].mn[j];
    }
    // Byte i of q[j][v] is element 32 j + 4 v + i % 4 of row i / 4: one 32-bit word per row.
    for (int j = 0; j < 8; ++j)
      for (int r = 0; r < kRows; ++r) {
        uint32_t w[8];
        for (int v = 0; v < 8; ++v) w[v] = load32(dec[r].q + 32 * j + 4 * v);
        for (int p = 0; p < 4; ++p)
          store32(o + off.nib + off.sub * j + 32 * p + 4 * r, (w[2 * p] & k4) | (w[2 * p + 1] & k4) << 4);
        if (q6)
          for (int g2 = 0; g2 < 2; ++g2) {
            uint32_t h = 0;
            for (int k = 0; k < 4; ++k) h |= ((w[4 * g2 + k] >> 4) & k2) << (2 * k);
            store32(o + off.high + off.sub * j + 32 * g2 + 4 * r, h);
          }
      }
  }
}

void unpack_group(TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst) {
  const size_t rb = t == TensorType::Q4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ6_K), kb = block_bytes(t);
  const Offsets off = offsets(t);
  const bool q6 = t == TensorType::Q6_K;
  const int64_t nb = n_in / 256;
  Decoded dec[kRows];
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* o = group + ib * kb;
    for (int r = 0; r < kRows; ++r) {
      std::memcpy(&dec[r].d, o + 2 * r, 2);
      if (!q6) std::memcpy(&dec[r].dmin, o + 16 + 2 * r, 2);
      for (int k = 0; k < (q6 ? 16 : 8); ++k) dec[r].sc[k] = o[off.scales + scale_pos(k, r)];
      if (!q6)
        for (int j = 0; j < 8; ++j) dec[r].mn[j] = o[off.mins + 8 * j + r];
    }
    for (int j = 0; j < 8; ++j)
      for (int v = 0; v < 8; ++v)
        for (int i = 0; i < 32; ++i) {
          int q = (o[off.nib + off.sub * j + 32 * (v / 2) + i] >> (4 * (v % 2))) & 15;
          if (q6) q |= ((o[off.high + off.sub * j + 32 * (v / 4) + i] >> (2 * (v % 4))) & 3) << 4;
          dec[i / 4].q[elem(j, v, i)] = static_cast<uint8_t>(q);
        }
    for (int r = 0; r < kRows; ++r) encode(t, dec[r], dst + r * rb * nb + ib * rb);
  }
}

}  // namespace edgellm::ops::k8
