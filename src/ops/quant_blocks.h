#pragma once
// ggml block layouts (packed, little-endian). Sizes are checked against io/tensor_type.cpp.
// Fields are raw bytes/uint16 so that blocks can be read at any address via memcpy helpers.
#include <cstdint>

namespace edgellm::ops {

constexpr int QK = 32;    // elements per block of the legacy formats
constexpr int QK_K = 256; // elements per K-quant super-block

#pragma pack(push, 1)
struct BlockQ8_0 {  // value = q * d
  uint16_t d;
  int8_t qs[QK];
};
struct BlockQ4_0 {  // value = (q - 8) * d; qs[j] low nibble = element j, high = j + 16
  uint16_t d;
  uint8_t qs[QK / 2];
};
struct BlockQ4_1 {  // value = q * d + m
  uint16_t d, m;
  uint8_t qs[QK / 2];
};
struct BlockQ5_0 {  // value = (q - 16) * d; bit 4 of element j is bit j of qh
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
struct BlockQ5_1 {  // value = q * d + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
// Q4_K: 8 sub-blocks of 32; value = d*sc[j]*q - dmin*mn[j]; 6-bit sc/mn packed in scales[12].
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];  // per 64 elements: 32 bytes, low nibbles first 32, high next 32
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[QK_K / 8];  // bit (2*c) / (2*c+1) of qh[l] = 5th bit of chunk c low / high half
  uint8_t qs[QK_K / 2];
};
// Q6_K: 16 sub-blocks of 16; value = d * scales[j] * (q - 32), q 6-bit.
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
// Internal activation formats (never in files).
// Q8_A: per-32 int8 with fp32 scale d and s = d * sum(qs) (for the offset formats).
struct BlockQ8_A {
  float d;
  float s;
  int8_t qs[QK];
};
// Q8_KA: 256 int8 (one K-quant super-block) with one fp32 scale per 32 elements, the K-quant
// sub-block size (Q6_K's 16-element sub-blocks pair up), and s[j] = d[j/2] * sum(qs[16j..16j+16))
// for the offset terms (K-quant mins, Q6_K's -32), stored as floats so kernels apply them with
// vector FMAs only (no scalar float expressions the compiler might contract differently per
// tile width). One scale per 256 cost Gemma 3 270M Q4_K_M 1.7% perplexity: activations with
// outliers (FFN down inputs) left most 32-blocks with a few int8 levels.
// The VNNI prefill tiles (kernels_k8-inl.h) read two more forms of the same sums, so that their
// per-sub-block epilogue is memory broadcasts instead of scalar arithmetic: s32[j] = s[2j] + s[2j+1]
// (the float sum the other kernels form) and o16[j] = -32 * sum(qs[16j..16j+16)) (Q6_K's offset,
// exact in int32: the tile starts its integer sum there).
struct BlockQ8_KA {
  float d[QK_K / 32];
  float s[QK_K / 16];
  float s32[QK_K / 32];
  int32_t o16[QK_K / 16];
  int8_t qs[QK_K];
};
#pragma pack(pop)

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// 6-bit scale j and min j (j < 8) of a Q4_K/Q5_K scales[12] array.
inline void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace edgellm::ops
