#pragma once
// GGUF v3 writer. Metadata keeps insertion order (setting an existing key replaces its value
// in place); tensors are laid out in insertion order, each at a multiple of the alignment.
// write() goes to a temporary file in the same directory and renames it over the target, so
// a crash never leaves a half-written model under the final name.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace edgellm::io {

class GgufWriter {
 public:
  GgufWriter() = default;

  // Scalars. Keys may be overwritten; the value's type follows the last call.
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  // Arrays. `elem` must be an integer type or BOOL (ints) / FLOAT32 or FLOAT64 (floats);
  // values that do not fit the element type throw InvalidArgument.
  void set_int_array(const std::string& key, ValueType elem, const std::vector<int64_t>& v);
  void set_float_array(const std::string& key, ValueType elem, const std::vector<double>& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  // Any value, e.g. one copied from a GgufFile's metadata (nested arrays included).
  void set(const std::string& key, Value v);
  void remove(const std::string& key);
  // Sets the data alignment (power of two > 0) and records it as general.alignment (UINT32).
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // Tensors (ne in ggml order, 1..4 dims). `bytes` must be exactly the tensor's size.
  void add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                  std::vector<uint8_t> bytes);
  // Same, without copying: `data` must stay valid until write()/to_bytes() returns.
  void add_tensor_view(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                       const void* data, size_t nbytes);

  // Serializes the whole file in memory (for tests and small files).
  std::vector<uint8_t> to_bytes() const;
  // Writes `path` atomically (temp file + rename). Throws edgellm::Error on I/O failure.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> owned;
    const uint8_t* data = nullptr;  // add_tensor_view's bytes; owned tensors use `owned`
    size_t nbytes = 0;
    // Read through here, never a pointer saved into `owned`: a copied writer must not point
    // into the original's buffers (ASan caught that in fuzz/gguf_seed_gen).
    const uint8_t* bytes() const { return owned.empty() ? data : owned.data(); }
  };
  using Sink = std::function<void(const void*, size_t)>;
  void serialize(const Sink& sink) const;
  void check_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                    size_t nbytes) const;

  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace edgellm::io
