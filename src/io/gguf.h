#pragma once
// GGUF v2/v3 reader: the file is mmap'ed read-only and tensors are zero-copy views into it.
// open() validates the whole structure up front; afterwards every accessor is bounds-safe.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/tensor_type.h"
#include "util/error.h"

namespace edgellm::io {

enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

// "UINT32", "STRING", ... ("INVALID" for ids outside the enum).
std::string_view value_type_name(ValueType t);

// One metadata value. Scalars keep their on-disk type; arrays are homogeneous.
struct Value {
  ValueType type = ValueType::UINT8;
  ValueType elem_type = ValueType::UINT8;  // for ARRAY only
  // Scalar storage: integers widen to int64/uint64, floats to double.
  std::variant<std::monostate, int64_t, uint64_t, double, bool, std::string> scalar;
  // ARRAY storage: exactly one of these is used, chosen by elem_type.
  std::vector<int64_t> ints;        // signed and unsigned integer element types, bool
  std::vector<double> floats;       // FLOAT32 / FLOAT64
  std::vector<std::string> strings; // STRING
  std::vector<Value> nested;        // ARRAY of ARRAY (rare)

  bool is_array() const { return type == ValueType::ARRAY; }
  size_t array_size() const;
};

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous (innermost) dimension
  uint64_t offset = 0;      // relative to the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // points into the mapping

  int64_t n_elements() const;
  int64_t rows() const;  // product of ne[1..]
};

class GgufFile {
 public:
  // Maps and validates; throws ModelFormatError with the path and the exact problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Same validation over bytes in memory (used by the fuzzer and tests). The caller keeps
  // `data` alive as long as the GgufFile.
  static std::unique_ptr<GgufFile> from_memory(const uint8_t* data, size_t size,
                                               const std::string& label = "<memory>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint32_t alignment() const { return alignment_; }
  // The whole file's bytes (the mapping, or the caller's buffer) and where tensor data starts.
  const uint8_t* bytes() const { return base_; }
  uint64_t data_start() const { return data_start_; }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: nullopt when absent; ModelFormatError when present with the wrong type.
  std::optional<int64_t> get_int(std::string_view key) const;      // any integer type
  std::optional<double> get_float(std::string_view key) const;     // float or integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Array getters: nullptr / empty optional when absent; error on wrong element type.
  const std::vector<std::string>* get_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;
  std::optional<std::vector<double>> get_float_array(std::string_view key) const;
  // Required variants: throw ModelFormatError "missing required key 'X' in FILE".
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;
  std::string require_string(std::string_view key) const;

  // Tells the OS that bytes [data, data + n) of the mapping will not be read again (e.g. a
  // tensor copied into another layout), so their pages leave this process's memory. A no-op
  // for from_memory files and outside the mapping; reading the range later is still valid.
  void release_pages(const void* data, size_t n) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Throws ModelFormatError if absent, or if its shape differs from `expected_ne`.
  const TensorInfo& require_tensor(std::string_view name,
                                   const std::vector<int64_t>& expected_ne) const;

 private:
  GgufFile() = default;
  void parse(const std::string& label);

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when we own an mmap (unmapped in the destructor)
  size_t mapping_size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace edgellm::io
