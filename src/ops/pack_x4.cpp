#include "ops/pack_x4.h"

#include <algorithm>
#include <cstring>

namespace edgellm::ops::x4 {
namespace {
// Header bytes (scales) per interleaved block: d x4, plus m x4 for Q4_1.
size_t header_bytes(io::TensorType t) { return t == io::TensorType::Q4_1 ? 16 : 8; }
size_t block_bytes(io::TensorType t) {
  return t == io::TensorType::Q4_1 ? 20 : t == io::TensorType::Q8_0 ? 34 : 18;
}
// Quant bytes per row and block.
int quant_bytes(io::TensorType t) { return t == io::TensorType::Q8_0 ? 32 : 16; }

// Quant byte k of an interleaved block <-> (row, byte j of that row's GGUF block), as a
// table: loading a model repacks tens of MB this way.
struct Map {
  uint8_t row[128], j[128];
  constexpr explicit Map(bool q8) : row(), j() {
    constexpr int kBase[4] = {0, 16, 8, 24};
    for (int k = 0; k < (q8 ? 128 : 64); ++k) {
      const int v = k / 32, i = k % 32;
      row[k] = static_cast<uint8_t>((i / 4) % 4);
      j[k] = static_cast<uint8_t>((q8 ? kBase[v] : 8 * v) + 4 * (i / 16) + i % 4);
    }
  }
};
constexpr Map kMap4(false), kMap8(true);
}  // namespace

bool packable(io::TensorType t) {
  return t == io::TensorType::Q4_0 || t == io::TensorType::Q4_1 || t == io::TensorType::Q8_0;
}

size_t group_bytes(io::TensorType t, int64_t n_in) { return 4 * block_bytes(t) * static_cast<size_t>(n_in / 32); }

void pack_group(io::TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst) {
  const size_t bb = block_bytes(t), hb = header_bytes(t);
  const int nq = 4 * quant_bytes(t);
  const Map& map = t == io::TensorType::Q8_0 ? kMap8 : kMap4;
  const int64_t nb = n_in / 32;
  const uint8_t* r[4];
  for (int j = 0; j < 4; ++j) r[j] = rows + static_cast<size_t>(std::min(4 * g + j, n_out - 1)) * row_stride;
  for (int64_t ib = 0; ib < nb; ++ib) {
    uint8_t* o = dst + ib * 4 * bb;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* b = r[j] + ib * bb;
      std::memcpy(o + 2 * j, b, 2);                        // d
      if (hb == 16) std::memcpy(o + 8 + 2 * j, b + 2, 2);  // m
    }
    for (int k = 0; k < nq; ++k) o[hb + k] = r[map.row[k]][ib * bb + (bb - nq / 4) + map.j[k]];
  }
}

void unpack_group(io::TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst) {
  const size_t bb = block_bytes(t), hb = header_bytes(t);
  const int nq = 4 * quant_bytes(t);
  const Map& map = t == io::TensorType::Q8_0 ? kMap8 : kMap4;
  const int64_t nb = n_in / 32;
  const size_t rb = bb * static_cast<size_t>(nb);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* in = group + ib * 4 * bb;
    for (int j = 0; j < 4; ++j) {
      uint8_t* b = dst + j * rb + ib * bb;
      std::memcpy(b, in + 2 * j, 2);
      if (hb == 16) std::memcpy(b + 2, in + 8 + 2 * j, 2);
    }
    for (int k = 0; k < nq; ++k) dst[map.row[k] * rb + ib * bb + (bb - nq / 4) + map.j[k]] = in[hb + k];
  }
}

}  // namespace edgellm::ops::x4
