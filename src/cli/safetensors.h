#pragma once
// Reads Hugging Face .safetensors files for the converters: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then the tensors' bytes. Every
// offset and shape is checked against the file before a tensor is read.
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace edgellm::cli {

struct SafeTensor {
  std::string dtype;           // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;  // outermost first (PyTorch order)
  uint64_t begin = 0, end = 0;  // byte range in the file (after the header)
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Throws ModelFormatError for a file that is not a well-formed safetensors file.
  explicit SafetensorsFile(const std::string& path);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }
  // The tensor as fp32 (F32, F16 and BF16 files), checking its shape when `shape` is not empty;
  // ModelFormatError naming the tensor when it is missing, of another shape or of another type.
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& shape = {});

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t data_start_ = 0;
  std::map<std::string, SafeTensor> tensors_;
};

}  // namespace edgellm::cli
