#pragma once
// GGML tensor element types as stored in GGUF files, and their block layout.
// This is a file-format fact, so it lives in io/; ops/ builds kernels on top of it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace edgellm::io {

// Values are the on-disk ids (ggml's enum); never renumber.
enum class TensorType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct TypeTraits {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
};

// Traits for a known type id; nullopt for ids this build does not know.
std::optional<TypeTraits> type_traits(uint32_t type_id);
inline TypeTraits traits(TensorType t) { return *type_traits(static_cast<uint32_t>(t)); }
std::string_view type_name(TensorType t);
// Parses names like "Q4_0", "q8_0", "F16"; nullopt if unknown.
std::optional<TensorType> type_from_name(std::string_view name);

// Bytes of one row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(TensorType t, int64_t n) {
  const TypeTraits tt = traits(t);
  return static_cast<size_t>(n / tt.block_elems) * tt.block_bytes;
}

}  // namespace edgellm::io
