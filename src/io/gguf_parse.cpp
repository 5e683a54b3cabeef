// GGUF structure parser and validator. Everything read from the file is untrusted: every
// read is bounds-checked against the bytes that remain, every count is checked against what
// could possibly fit before anything is allocated, and all size arithmetic is overflow-safe.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "io/gguf.h"

namespace edgellm::io {
namespace {

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;  // nested arrays beyond this are rejected (stack safety)
// Smallest possible encodings, used to reject counts that cannot fit in the file.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // key length, type id, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name len, n_dims, ne[0], type, offset

// Bytes one array element needs at least; 0 for an invalid type.
uint64_t min_elem_bytes(uint32_t t) {
  switch (static_cast<ValueType>(t)) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;   // length prefix
    case ValueType::ARRAY: return 4 + 8;  // element type + count
  }
  return 0;
}

// A name from the file, quoted for a one-line message: control bytes and backslashes
// escaped, very long names shortened.
std::string quoted(const std::string& name) {
  static const char* hex = "0123456789abcdef";
  std::string out(1, '\'');
  for (size_t i = 0; i < name.size(); ++i) {
    if (i == 120) {
      out += "...";
      break;
    }
    const unsigned char ch = static_cast<unsigned char>(name[i]);
    if (ch < 0x20 || ch == 0x7f || ch == '\\') {
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += '\'';
  return out;
}

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& label)
      : base_(base), size_(size), label_(label) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  // What is being read, for error messages ("key 'general.name'", "tensor 'x'").
  std::string context;

  [[noreturn]] void fail(const std::string& problem) const {
    throw ModelFormatError(label_ + ": " + problem);
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail("truncated file: " + std::string(what) + (context.empty() ? "" : " of " + context) +
           " at offset " + std::to_string(pos_) + " needs " + std::to_string(n) +
           " bytes but only " + std::to_string(remaining()) + " remain (file size " +
           std::to_string(size_) + ")");
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));  // memcpy: the file gives no alignment
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail("truncated file: " + std::string(what) + (context.empty() ? "" : " of " + context) +
           " has length " + std::to_string(len) + " but only " + std::to_string(remaining()) +
           " bytes remain at offset " + std::to_string(pos_) + " (file size " +
           std::to_string(size_) + ")");
    std::string s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& label_;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

Value read_value(Cursor& c, uint32_t type_id, int depth);

// One integer or bool array element, widened to int64 (uint64 above INT64_MAX wraps).
int64_t read_int_elem(Cursor& c, ValueType t) {
  switch (t) {
    case ValueType::UINT8: return c.read<uint8_t>("array element");
    case ValueType::INT8: return c.read<int8_t>("array element");
    case ValueType::UINT16: return c.read<uint16_t>("array element");
    case ValueType::INT16: return c.read<int16_t>("array element");
    case ValueType::UINT32: return c.read<uint32_t>("array element");
    case ValueType::INT32: return c.read<int32_t>("array element");
    case ValueType::UINT64: return static_cast<int64_t>(c.read<uint64_t>("array element"));
    case ValueType::INT64: return c.read<int64_t>("array element");
    case ValueType::BOOL: return c.read<uint8_t>("array element") != 0 ? 1 : 0;
    default: c.fail(c.context + ": internal error, non-integer array element");
  }
}

// Reads one array body (element type, count, elements) into `v`.
void read_array(Cursor& c, Value& v, int depth) {
  if (depth > kMaxArrayDepth)
    c.fail(c.context + " nests arrays deeper than " + std::to_string(kMaxArrayDepth) + " levels");
  v.type = ValueType::ARRAY;
  const uint32_t et = c.read<uint32_t>("array element type");
  if (!valid_value_type(et))
    c.fail(c.context + " has an array with invalid element type id " + std::to_string(et));
  v.elem_type = static_cast<ValueType>(et);
  const uint64_t n = c.read<uint64_t>("array length");
  if (n > c.remaining() / min_elem_bytes(et))
    c.fail("truncated or corrupt file: " + c.context + " has an array of " + std::to_string(n) + " " +
           std::string(value_type_name(v.elem_type)) + " elements that cannot fit in the " +
           std::to_string(c.remaining()) + " bytes remaining");
  const size_t count = static_cast<size_t>(n);
  switch (v.elem_type) {
    case ValueType::STRING:
      v.strings.reserve(count);
      for (size_t i = 0; i < count; ++i) v.strings.push_back(c.read_string("array string"));
      break;
    case ValueType::FLOAT32:
      v.floats.reserve(count);
      for (size_t i = 0; i < count; ++i) v.floats.push_back(c.read<float>("array element"));
      break;
    case ValueType::FLOAT64:
      v.floats.reserve(count);
      for (size_t i = 0; i < count; ++i) v.floats.push_back(c.read<double>("array element"));
      break;
    case ValueType::ARRAY:
      v.nested.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        Value inner;
        read_array(c, inner, depth + 1);
        v.nested.push_back(std::move(inner));
      }
      break;
    default:
      v.ints.reserve(count);
      for (size_t i = 0; i < count; ++i) v.ints.push_back(read_int_elem(c, v.elem_type));
      break;
  }
}

Value read_value(Cursor& c, uint32_t type_id, int depth) {
  if (!valid_value_type(type_id))
    c.fail(c.context + " has invalid value type id " + std::to_string(type_id));
  Value v;
  v.type = static_cast<ValueType>(type_id);
  switch (v.type) {
    case ValueType::UINT8: v.scalar = uint64_t{c.read<uint8_t>("value")}; break;
    case ValueType::INT8: v.scalar = int64_t{c.read<int8_t>("value")}; break;
    case ValueType::UINT16: v.scalar = uint64_t{c.read<uint16_t>("value")}; break;
    case ValueType::INT16: v.scalar = int64_t{c.read<int16_t>("value")}; break;
    case ValueType::UINT32: v.scalar = uint64_t{c.read<uint32_t>("value")}; break;
    case ValueType::INT32: v.scalar = int64_t{c.read<int32_t>("value")}; break;
    case ValueType::UINT64: v.scalar = c.read<uint64_t>("value"); break;
    case ValueType::INT64: v.scalar = c.read<int64_t>("value"); break;
    case ValueType::FLOAT32: v.scalar = double{c.read<float>("value")}; break;
    case ValueType::FLOAT64: v.scalar = c.read<double>("value"); break;
    case ValueType::BOOL: v.scalar = c.read<uint8_t>("value") != 0; break;
    case ValueType::STRING: v.scalar = c.read_string("string value"); break;
    case ValueType::ARRAY: read_array(c, v, depth); break;
  }
  return v;
}

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

std::string range_str(uint64_t begin, uint64_t n) {
  std::string s(1, '[');
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(begin + n);
  s += ')';
  return s;
}

}  // namespace

void GgufFile::parse(const std::string& label) {
  Cursor c(base_, size_, label);
  if (size_ < 4) c.fail("not a GGUF file (only " + std::to_string(size_) + " bytes)");
  if (std::memcmp(base_, "GGUF", 4) != 0) {
    static const char* hex = "0123456789abcdef";
    std::string got;
    for (int i = 0; i < 4; ++i) {
      got += i ? " " : "";
      got += hex[base_[i] >> 4];
      got += hex[base_[i] & 15];
    }
    c.fail("not a GGUF file (magic bytes are " + got + ", expected 47 47 55 46 \"GGUF\")");
  }
  c.read<uint32_t>("magic");
  c.context = "header";
  version_ = c.read<uint32_t>("version");
  if (version_ == 1)
    c.fail("GGUF version 1 is not supported (only versions 2 and 3); re-convert the model "
           "with a current converter");
  if (version_ != 2 && version_ != 3) {
    std::string hint = (version_ & 0xFFFF) == 0 ? " (a big-endian file?)" : "";
    c.fail("unsupported GGUF version " + std::to_string(version_) + hint +
           "; only versions 2 and 3 are supported");
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.remaining() / kMinKvBytes)
    c.fail("truncated or corrupt file: metadata count " + std::to_string(n_kv) + " cannot fit in the " +
           std::to_string(c.remaining()) + " bytes remaining after the header");
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    c.fail("truncated or corrupt file: tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
           std::to_string(c.remaining()) + " bytes remaining after the header");

  kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    c.context = "metadata entry #" + std::to_string(i);
    std::string key = c.read_string("key");
    if (kv_index_.count(key)) c.fail("duplicate metadata key " + quoted(key));
    c.context = "key " + quoted(key);
    const uint32_t type_id = c.read<uint32_t>("value type");
    Value v = read_value(c, type_id, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::UINT32)
      c.fail("general.alignment has type " + std::string(value_type_name(a->type)) +
             ", expected UINT32");
    const uint64_t al = std::get<uint64_t>(a->scalar);
    if (al == 0 || (al & (al - 1)) != 0)
      c.fail("general.alignment is " + std::to_string(al) + "; it must be a power of two > 0");
    alignment_ = static_cast<uint32_t>(al);
  }

  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    c.fail("truncated or corrupt file: tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
           std::to_string(c.remaining()) + " bytes remaining after the metadata");
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    c.context = "tensor info #" + std::to_string(i);
    t.name = c.read_string("tensor name");
    if (tensor_index_.count(t.name)) c.fail("duplicate tensor name " + quoted(t.name));
    const std::string tn = "tensor " + quoted(t.name);
    c.context = tn;
    const uint32_t n_dims = c.read<uint32_t>("n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail(tn + " has n_dims " + std::to_string(n_dims) + " (must be 1.." +
             std::to_string(kMaxDims) + ")");
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t ne = c.read<int64_t>("dimension");
      if (ne <= 0)
        c.fail(tn + " has invalid dimension ne[" + std::to_string(d) + "] = " +
               std::to_string(ne) + " (must be > 0)");
      t.ne.push_back(ne);
      if (__builtin_mul_overflow(n_el, ne, &n_el))
        c.fail(tn + " element count overflows (shape so far " + shape_str(t.ne) + ")");
    }
    const uint32_t type_id = c.read<uint32_t>("type id");
    const auto tt = type_traits(type_id);
    if (!tt) c.fail(tn + " has unknown tensor type id " + std::to_string(type_id));
    t.type = static_cast<TensorType>(type_id);
    if (t.ne[0] % tt->block_elems != 0)
      c.fail(tn + " (" + std::string(tt->name) + ") has ne[0] = " + std::to_string(t.ne[0]) +
             ", not a multiple of the block size " + std::to_string(tt->block_elems));
    // nbytes = blocks per row * block bytes * rows; n_el fits int64 so each factor does too.
    uint64_t nbytes = static_cast<uint64_t>(t.ne[0] / tt->block_elems);
    bool ovf = __builtin_mul_overflow(nbytes, uint64_t{tt->block_bytes}, &nbytes);
    for (size_t d = 1; d < t.ne.size(); ++d)
      ovf = ovf || __builtin_mul_overflow(nbytes, static_cast<uint64_t>(t.ne[d]), &nbytes);
    if (ovf) c.fail(tn + " byte size overflows for shape " + shape_str(t.ne));
    t.nbytes = nbytes;
    t.offset = c.read<uint64_t>("data offset");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // Data section starts at the next multiple of the alignment (pos <= size, so no overflow).
  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  data_start_ = data_start;
  for (TensorInfo& t : tensors_) {
    const std::string tn = "tensor " + quoted(t.name);
    if (t.offset % alignment_ != 0)
      c.fail(tn + " data offset " + std::to_string(t.offset) +
             " is not a multiple of the alignment " + std::to_string(alignment_));
    if (t.offset > UINT64_MAX - data_start || data_start + t.offset > UINT64_MAX - t.nbytes)
      c.fail(tn + " data offset " + std::to_string(t.offset) + " is past the end of file (size " +
             std::to_string(size_) + ")");
    const uint64_t begin = data_start + t.offset;
    if (begin > size_ || t.nbytes > size_ - begin)
      c.fail(tn + " data " + range_str(begin, t.nbytes) + " extends past end of file (size " +
             std::to_string(size_) + ")");
    t.data = base_ + begin;
  }

  // Overlap check: sort by offset, each tensor must end before the next one starts.
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& a = tensors_[order[i - 1]];
    const TensorInfo& b = tensors_[order[i]];
    if (a.offset + a.nbytes > b.offset)
      c.fail("tensors " + quoted(a.name) + " " + range_str(data_start + a.offset, a.nbytes) +
             " and " + quoted(b.name) + " " + range_str(data_start + b.offset, b.nbytes) +
             " overlap");
  }
}

}  // namespace edgellm::io
