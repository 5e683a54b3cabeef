#pragma once
// Reader of CTranslate2's model.bin (the format of the Whisper models shipped on PyPI; layout in
// docs/whisper.md): a version, the spec name and revision, then named variables (rank, dims, a
// data type, raw bytes) and aliases. The whole file is read into memory and every field is
// bounds-checked, so a damaged file is a ModelFormatError, never an out-of-bounds read.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edgellm::asr {

// CTranslate2's DataType ids as stored in model.bin.
enum class Ct2Type : uint8_t { F32 = 0, I8 = 1, I16 = 2, I32 = 3, F16 = 4, BF16 = 5 };

struct Ct2Variable {
  std::string name;                 // e.g. "encoder/layer_0/self_attention/linear_0/weight"
  std::vector<int64_t> dims;        // row-major, outermost first (empty for a scalar)
  Ct2Type type = Ct2Type::F32;
  std::vector<uint8_t> bytes;
  int64_t n_elements() const;
};

struct Ct2Model {
  uint32_t version = 0;
  std::string spec;      // "WhisperSpec"
  uint32_t revision = 0;
  std::map<std::string, Ct2Variable> variables;
  std::map<std::string, std::string> aliases;  // alias -> variable

  // Parses model.bin; throws ModelFormatError naming the file and the problem.
  static Ct2Model read(const std::string& path);
  static Ct2Model parse(const uint8_t* data, size_t size, const std::string& label);
  // The variable (following aliases); ModelFormatError when absent.
  const Ct2Variable& at(const std::string& name) const;
  bool has(const std::string& name) const;
  // A scalar variable as an integer (int8/16/32 or a float holding an integer).
  int64_t scalar_int(const std::string& name) const;
};

// Bytes per element of a CTranslate2 type (0 for an id it does not know).
size_t ct2_type_size(Ct2Type t);

}  // namespace edgellm::asr
