#include "ops/pack_x16.h"

#include <algorithm>
#include <cstring>

namespace edgellm::ops::x16 {
namespace {
using io::TensorType;
bool is_q8(TensorType t) { return t == TensorType::Q8_0; }
size_t row_block_bytes(TensorType t) { return is_q8(t) ? 34 : 22; }
}  // namespace

bool packable(TensorType t) { return t == TensorType::Q5_0 || t == TensorType::Q8_0; }

size_t group_bytes(TensorType t, int64_t n_in) {
  return kRows * row_block_bytes(t) * static_cast<size_t>(n_in / 32);
}

void pack_group(TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst) {
  const size_t rb = row_block_bytes(t), bb = kRows * rb;
  const int64_t nb = n_in / 32;
  const uint8_t* r[kRows];
  for (int j = 0; j < kRows; ++j) r[j] = rows + static_cast<size_t>(std::min(kRows * g + j, n_out - 1)) * row_stride;
  for (int64_t ib = 0; ib < nb; ++ib) {
    uint8_t* o = dst + ib * bb;
    for (int j = 0; j < kRows; ++j) std::memcpy(o + 2 * j, r[j] + ib * rb, 2);  // d
    if (is_q8(t)) {
      for (int s = 0; s < 8; ++s)
        for (int j = 0; j < kRows; ++j) std::memcpy(o + 32 + 64 * s + 4 * j, r[j] + ib * rb + 2 + 4 * s, 4);
    } else {
      std::memset(o + 32, 0, 64);
      for (int j = 0; j < kRows; ++j) {
        const uint8_t* b = r[j] + ib * rb;
        uint32_t qh;
        std::memcpy(&qh, b + 2, 4);
        for (int e = 0; e < 32; ++e) {
          const int bit = 64 * (e / 4) + 4 * j + e % 4;  // mask e / 4, bit 4 j + e % 4
          o[32 + bit / 8] |= static_cast<uint8_t>(((qh >> e) & 1u) << (bit % 8));
        }
        for (int v = 0; v < 4; ++v) std::memcpy(o + 96 + 64 * v + 4 * j, b + 6 + 4 * v, 4);
      }
    }
  }
}

void unpack_group(TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst) {
  const size_t rb = row_block_bytes(t), bb = kRows * rb;
  const int64_t nb = n_in / 32;
  const size_t row_bytes = rb * static_cast<size_t>(nb);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* in = group + ib * bb;
    for (int j = 0; j < kRows; ++j) {
      uint8_t* b = dst + j * row_bytes + ib * rb;
      std::memcpy(b, in + 2 * j, 2);
      if (is_q8(t)) {
        for (int s = 0; s < 8; ++s) std::memcpy(b + 2 + 4 * s, in + 32 + 64 * s + 4 * j, 4);
      } else {
        uint32_t qh = 0;
        for (int e = 0; e < 32; ++e) {
          const int bit = 64 * (e / 4) + 4 * j + e % 4;
          qh |= uint32_t{(in[32 + bit / 8] >> (bit % 8)) & 1u} << e;
        }
        std::memcpy(b + 2, &qh, 4);
        for (int v = 0; v < 4; ++v) std::memcpy(b + 6 + 4 * v, in + 96 + 64 * v + 4 * j, 4);
      }
    }
  }
}

}  // namespace edgellm::ops::x16
