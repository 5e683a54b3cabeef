#pragma once
// Helpers for GGUF tests: build small valid files with GgufWriter, then locate and patch
// individual fields to produce exactly one defect at a time.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace edgellm::io::testing {

using Bytes = std::vector<uint8_t>;

inline std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  Bytes b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Offset of the GGUF string (u64 length + bytes) equal to `s`; fails the test if absent.
inline size_t find_gguf_string(const Bytes& b, const std::string& s) {
  Bytes pat(8 + s.size());
  const uint64_t n = s.size();
  std::memcpy(pat.data(), &n, 8);
  std::memcpy(pat.data() + 8, s.data(), s.size());
  for (size_t i = 0; i + pat.size() <= b.size(); ++i)
    if (std::memcmp(b.data() + i, pat.data(), pat.size()) == 0) return i;
  ADD_FAILURE() << "string '" << s << "' not found in GGUF bytes";
  return 0;
}

// Field offsets of one metadata entry.
struct KvAt {
  size_t key;    // key length prefix
  size_t type;   // u32 value type
  size_t value;  // first byte of the value
};
inline KvAt kv_at(const Bytes& b, const std::string& key) {
  const size_t k = find_gguf_string(b, key);
  return {k, k + 8 + key.size(), k + 12 + key.size()};
}

// Field offsets of one tensor info.
struct TensorAt {
  size_t name, n_dims, ne, type, offset;
};
inline TensorAt tensor_at(const Bytes& b, const std::string& name) {
  const size_t n = find_gguf_string(b, name);
  TensorAt t{};
  t.name = n;
  t.n_dims = n + 8 + name.size();
  uint32_t nd = 0;
  std::memcpy(&nd, b.data() + t.n_dims, 4);
  t.ne = t.n_dims + 4;
  t.type = t.ne + 8 * nd;
  t.offset = t.type + 4;
  return t;
}

template <typename T>
void poke(Bytes& b, size_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

template <typename T>
T peek(const Bytes& b, size_t at) {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

// Parses `b` expecting a ModelFormatError whose one-line message contains `reason`.
inline std::string expect_format_error(const Bytes& b, const std::string& reason) {
  try {
    GgufFile::from_memory(b.data(), b.size(), "test.gguf");
  } catch (const ModelFormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(reason), std::string::npos) << "message: " << msg;
    EXPECT_EQ(msg.rfind("test.gguf: ", 0), 0u) << "message should name the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message should be one line: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error; expected one containing: " << reason;
  return {};
}

// A small valid model: metadata of several types and three tensors whose sizes are
// multiples of 32 bytes (so the file ends exactly at the last tensor's data).
inline GgufWriter small_model_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"});
  w.set_int_array("tokenizer.ggml.token_type", ValueType::INT32, {1, 1, 3});
  std::vector<float> norm(64);
  for (size_t i = 0; i < norm.size(); ++i) norm[i] = 0.5f * float(i);
  w.add_tensor("norm.weight", TensorType::F32, {64}, f32_bytes(norm));
  Bytes q(static_cast<size_t>(2 * 2 * 18));  // Q4_0 [64, 2]: 2 blocks per row, 18 bytes each
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>(i * 7);
  w.add_tensor("blk.0.ffn_up.weight", TensorType::Q4_0, {64, 2}, q);
  w.add_tensor("out.weight", TensorType::F32, {8, 2, 2}, f32_bytes(std::vector<float>(32, 1.0f)));
  return w;
}

inline Bytes small_model() { return small_model_writer().to_bytes(); }

}  // namespace edgellm::io::testing
