#include "ops/pack_x4.h"

#include <algorithm>
#include <cstring>

namespace edgellm::ops::x4 {
namespace {
using io::TensorType;
bool has_m(TensorType t) { return t == TensorType::Q4_1 || t == TensorType::Q5_1; }
bool is_q5(TensorType t) { return t == TensorType::Q5_0 || t == TensorType::Q5_1; }
// Scale bytes per interleaved block: d x4, plus m x4 for Q4_1/Q5_1.
size_t header_bytes(TensorType t) { return has_m(t) ? 16 : 8; }
// Bytes of one row's GGUF block.
size_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::Q4_1: return 20;
    case TensorType::Q5_0: return 22;
    case TensorType::Q5_1: return 24;
    case TensorType::Q8_0: return 34;
    default: return 18;
  }
}
// Quant bytes per row and block (the last bytes of a GGUF block).
int quant_bytes(TensorType t) { return t == TensorType::Q8_0 ? 32 : 16; }

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

// Q5 fifth bit n = 8 s + b of an interleaved block (bit b of its byte s) <-> (row, element):
// it belongs to byte i = s + (b < 4 ? 16 : 0) of nibble vector k = b % 4 (see pack_x4.h).
struct HighMap {
  uint8_t row[128], elem[128];
  constexpr HighMap() : row(), elem() {
    for (int n = 0; n < 128; ++n) {
      const int s = n / 8, b = n % 8, i = s + (b < 4 ? 16 : 0), k = b % 4;
      row[n] = static_cast<uint8_t>((i / 4) % 4);
      elem[n] = static_cast<uint8_t>(8 * (k / 2) + 4 * (i / 16) + i % 4 + 16 * (k % 2));
    }
  }
};
constexpr HighMap kHigh;

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace

bool packable(TensorType t) {
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q5_0 || t == TensorType::Q5_1 ||
         t == TensorType::Q8_0;
}

size_t group_bytes(TensorType t, int64_t n_in) { return 4 * block_bytes(t) * static_cast<size_t>(n_in / 32); }

void pack_group(TensorType t, const uint8_t* rows, size_t row_stride, int64_t n_in, int64_t n_out, int64_t g,
                uint8_t* dst) {
  const size_t bb = block_bytes(t), hb = header_bytes(t);
  const int nq = 4 * quant_bytes(t);
  const bool q5 = is_q5(t);
  const size_t qo = hb + (q5 ? 16 : 0);  // quants' offset in an interleaved block
  const Map& map = t == TensorType::Q8_0 ? kMap8 : kMap4;
  const int64_t nb = n_in / 32;
  const uint8_t* r[4];
  for (int j = 0; j < 4; ++j) r[j] = rows + static_cast<size_t>(std::min(4 * g + j, n_out - 1)) * row_stride;
  for (int64_t ib = 0; ib < nb; ++ib) {
    uint8_t* o = dst + ib * 4 * bb;
    uint32_t qh[4] = {};
    for (int j = 0; j < 4; ++j) {
      const uint8_t* b = r[j] + ib * bb;
      std::memcpy(o + 2 * j, b, 2);                        // d
      if (hb == 16) std::memcpy(o + 8 + 2 * j, b + 2, 2);  // m
      if (q5) qh[j] = load_u32(b + bb - 20);  // qh: the 4 bytes before qs
    }
    if (q5) {
      std::memset(o + hb, 0, 16);
      for (int n = 0; n < 128; ++n)
        o[hb + n / 8] |= static_cast<uint8_t>(((qh[kHigh.row[n]] >> kHigh.elem[n]) & 1) << (n % 8));
    }
    for (int k = 0; k < nq; ++k) o[qo + k] = r[map.row[k]][ib * bb + (bb - nq / 4) + map.j[k]];
  }
}

void unpack_group(TensorType t, const uint8_t* group, int64_t n_in, uint8_t* dst) {
  const size_t bb = block_bytes(t), hb = header_bytes(t);
  const int nq = 4 * quant_bytes(t);
  const bool q5 = is_q5(t);
  const size_t qo = hb + (q5 ? 16 : 0);
  const Map& map = t == TensorType::Q8_0 ? kMap8 : kMap4;
  const int64_t nb = n_in / 32;
  const size_t rb = bb * static_cast<size_t>(nb);
  for (int64_t ib = 0; ib < nb; ++ib) {
    const uint8_t* in = group + ib * 4 * bb;
    for (int j = 0; j < 4; ++j) {
      uint8_t* b = dst + j * rb + ib * bb;
      std::memcpy(b, in + 2 * j, 2);
      if (hb == 16) std::memcpy(b + 2, in + 8 + 2 * j, 2);
    }
    if (q5) {
      uint32_t qh[4] = {};
      for (int n = 0; n < 128; ++n) qh[kHigh.row[n]] |= uint32_t{(in[hb + n / 8] >> (n % 8)) & 1u} << kHigh.elem[n];
      for (int j = 0; j < 4; ++j) std::memcpy(dst + j * rb + ib * bb + bb - 20, &qh[j], 4);
    }
    for (int k = 0; k < nq; ++k) dst[map.row[k] * rb + ib * bb + (bb - nq / 4) + map.j[k]] = in[qo + k];
  }
}

}  // namespace edgellm::ops::x4
