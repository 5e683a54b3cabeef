#include "io/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace edgellm::io {
namespace {

constexpr uint32_t kVersion = 3;

class Buffer {
 public:
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  void put_str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
};

bool int_fits(ValueType t, __int128 x) {
  switch (t) {
    case ValueType::UINT8: return x >= 0 && x <= UINT8_MAX;
    case ValueType::INT8: return x >= INT8_MIN && x <= INT8_MAX;
    case ValueType::UINT16: return x >= 0 && x <= UINT16_MAX;
    case ValueType::INT16: return x >= INT16_MIN && x <= INT16_MAX;
    case ValueType::UINT32: return x >= 0 && x <= UINT32_MAX;
    case ValueType::INT32: return x >= INT32_MIN && x <= INT32_MAX;
    case ValueType::UINT64: return x >= 0 && x <= static_cast<__int128>(UINT64_MAX);
    case ValueType::INT64: return x >= INT64_MIN && x <= INT64_MAX;
    case ValueType::BOOL: return x == 0 || x == 1;
    default: return false;
  }
}

bool is_int_elem(ValueType t) {
  return t != ValueType::FLOAT32 && t != ValueType::FLOAT64 && t != ValueType::STRING &&
         t != ValueType::ARRAY && static_cast<uint32_t>(t) <= 12;
}

[[noreturn]] void bad(const std::string& key, const std::string& problem) {
  throw InvalidArgument("GGUF writer: key '" + key + "': " + problem);
}

// Writes an integer of type t; the caller has range-checked x.
void put_int(Buffer& b, ValueType t, __int128 x) {
  switch (t) {
    case ValueType::UINT8: case ValueType::BOOL: b.put(static_cast<uint8_t>(x)); break;
    case ValueType::INT8: b.put(static_cast<int8_t>(x)); break;
    case ValueType::UINT16: b.put(static_cast<uint16_t>(x)); break;
    case ValueType::INT16: b.put(static_cast<int16_t>(x)); break;
    case ValueType::UINT32: b.put(static_cast<uint32_t>(x)); break;
    case ValueType::INT32: b.put(static_cast<int32_t>(x)); break;
    case ValueType::UINT64: b.put(static_cast<uint64_t>(x)); break;
    case ValueType::INT64: b.put(static_cast<int64_t>(x)); break;
    default: break;
  }
}

void put_array_body(Buffer& b, const std::string& key, const Value& v);

void put_value(Buffer& b, const std::string& key, const Value& v) {
  const ValueType t = v.type;
  switch (t) {
    case ValueType::STRING: {
      const auto* s = std::get_if<std::string>(&v.scalar);
      if (!s) bad(key, "STRING value holds no string");
      b.put_str(*s);
      return;
    }
    case ValueType::FLOAT32: case ValueType::FLOAT64: {
      const auto* d = std::get_if<double>(&v.scalar);
      if (!d) bad(key, "float value holds no double");
      if (t == ValueType::FLOAT32) b.put(static_cast<float>(*d));
      else b.put(*d);
      return;
    }
    case ValueType::BOOL: {
      const auto* x = std::get_if<bool>(&v.scalar);
      if (!x) bad(key, "BOOL value holds no bool");
      b.put<uint8_t>(*x ? 1 : 0);
      return;
    }
    case ValueType::ARRAY:
      put_array_body(b, key, v);
      return;
    default: {
      if (!is_int_elem(t)) bad(key, "invalid value type id " + std::to_string(uint32_t(t)));
      __int128 x;
      if (const auto* s = std::get_if<int64_t>(&v.scalar)) x = *s;
      else if (const auto* u = std::get_if<uint64_t>(&v.scalar)) x = *u;
      else bad(key, std::string(value_type_name(t)) + " value holds no integer");
      if (!int_fits(t, x)) bad(key, "value out of range for " + std::string(value_type_name(t)));
      put_int(b, t, x);
      return;
    }
  }
}

void put_array_body(Buffer& b, const std::string& key, const Value& v) {
  const ValueType et = v.elem_type;
  b.put(static_cast<uint32_t>(et));
  b.put<uint64_t>(v.array_size());
  switch (et) {
    case ValueType::STRING:
      for (const std::string& s : v.strings) b.put_str(s);
      break;
    case ValueType::FLOAT32:
      for (double d : v.floats) b.put(static_cast<float>(d));
      break;
    case ValueType::FLOAT64:
      for (double d : v.floats) b.put(d);
      break;
    case ValueType::ARRAY:
      for (const Value& inner : v.nested) {
        if (!inner.is_array()) bad(key, "nested element of an ARRAY of ARRAY is not an array");
        put_array_body(b, key, inner);
      }
      break;
    default:
      if (!is_int_elem(et)) bad(key, "invalid array element type " + std::to_string(uint32_t(et)));
      for (int64_t i : v.ints) {
        // UINT64 elements are stored bit-cast in int64 (as the reader does).
        const __int128 x = et == ValueType::UINT64 ? __int128(static_cast<uint64_t>(i)) : i;
        if (!int_fits(et, x))
          bad(key, "array element " + std::to_string(i) + " out of range for " +
                       std::string(value_type_name(et)));
        put_int(b, et, x);
      }
      break;
  }
}

Value scalar(ValueType t, decltype(Value::scalar) s) {
  Value v;
  v.type = t;
  v.scalar = std::move(s);
  return v;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void GgufWriter::set(const std::string& key, Value v) {
  if (key == "general.alignment") {
    const auto* a = std::get_if<uint64_t>(&v.scalar);
    if (v.type != ValueType::UINT32 || !a || *a == 0 || (*a & (*a - 1)) != 0)
      bad(key, "must be a UINT32 power of two > 0");
    alignment_ = static_cast<uint32_t>(*a);
  }
  // Serialize once now so that a bad value fails here, at the call that made it.
  Buffer probe;
  put_value(probe, key, v);
  for (auto& [k, old] : kv_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::remove(const std::string& key) {
  kv_.erase(std::remove_if(kv_.begin(), kv_.end(), [&](const auto& kv) { return kv.first == key; }),
            kv_.end());
  if (key == "general.alignment") alignment_ = 32;
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) { set(k, scalar(ValueType::UINT8, uint64_t{v})); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { set(k, scalar(ValueType::INT8, int64_t{v})); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { set(k, scalar(ValueType::UINT16, uint64_t{v})); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { set(k, scalar(ValueType::INT16, int64_t{v})); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { set(k, scalar(ValueType::UINT32, uint64_t{v})); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { set(k, scalar(ValueType::INT32, int64_t{v})); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { set(k, scalar(ValueType::UINT64, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { set(k, scalar(ValueType::INT64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { set(k, scalar(ValueType::FLOAT32, double{v})); }
void GgufWriter::set_f64(const std::string& k, double v) { set(k, scalar(ValueType::FLOAT64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { set(k, scalar(ValueType::BOOL, v)); }
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  set(k, scalar(ValueType::STRING, v));
}

void GgufWriter::set_int_array(const std::string& key, ValueType elem,
                               const std::vector<int64_t>& values) {
  if (!is_int_elem(elem)) bad(key, "set_int_array needs an integer or BOOL element type");
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.ints = values;
  set(key, std::move(v));
}

void GgufWriter::set_float_array(const std::string& key, ValueType elem,
                                 const std::vector<double>& values) {
  if (elem != ValueType::FLOAT32 && elem != ValueType::FLOAT64)
    bad(key, "set_float_array needs FLOAT32 or FLOAT64");
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.floats = values;
  set(key, std::move(v));
}

void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& values) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::STRING;
  v.strings = values;
  set(key, std::move(v));
}

void GgufWriter::set_alignment(uint32_t alignment) { set_u32("general.alignment", alignment); }

void GgufWriter::check_tensor(const std::string& name, TensorType type,
                              const std::vector<int64_t>& ne, size_t nbytes) const {
  auto fail = [&](const std::string& p) {
    throw InvalidArgument("GGUF writer: tensor '" + name + "': " + p);
  };
  if (name.empty()) fail("empty name");
  for (const Tensor& t : tensors_)
    if (t.name == name) fail("added twice");
  const auto tt = type_traits(static_cast<uint32_t>(type));
  if (!tt) fail("unknown tensor type");
  if (ne.empty() || ne.size() > 4) fail("needs 1..4 dimensions");
  uint64_t expect = 0;
  for (int64_t d : ne)
    if (d <= 0) fail("dimensions must be > 0");
  if (ne[0] % tt->block_elems != 0)
    fail("ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the block size " +
         std::to_string(tt->block_elems));
  bool ovf = __builtin_mul_overflow(static_cast<uint64_t>(ne[0] / tt->block_elems),
                                    uint64_t{tt->block_bytes}, &expect);
  for (size_t i = 1; i < ne.size(); ++i)
    ovf = ovf || __builtin_mul_overflow(expect, static_cast<uint64_t>(ne[i]), &expect);
  if (ovf) fail("size overflows");
  if (expect != nbytes)
    fail("has " + std::to_string(nbytes) + " bytes of data, expected " + std::to_string(expect));
}

void GgufWriter::add_tensor(const std::string& name, TensorType type,
                            const std::vector<int64_t>& ne, std::vector<uint8_t> bytes) {
  check_tensor(name, type, ne, bytes.size());
  Tensor t{name, type, ne, std::move(bytes), nullptr, 0};
  t.nbytes = t.owned.size();
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor_view(const std::string& name, TensorType type,
                                 const std::vector<int64_t>& ne, const void* data, size_t nbytes) {
  check_tensor(name, type, ne, nbytes);
  tensors_.push_back(Tensor{name, type, ne, {}, static_cast<const uint8_t*>(data), nbytes});
}

void GgufWriter::serialize(const Sink& sink) const {
  Buffer h;
  h.bytes.assign({'G', 'G', 'U', 'F'});
  h.put<uint32_t>(kVersion);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    h.put_str(key);
    h.put(static_cast<uint32_t>(v.type));
    put_value(h, key, v);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    h.put_str(t.name);
    h.put(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) h.put<int64_t>(d);
    h.put(static_cast<uint32_t>(t.type));
    h.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, alignment_);
  }
  h.bytes.resize(align_up(h.bytes.size(), alignment_), 0);
  sink(h.bytes.data(), h.bytes.size());

  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const Tensor& t : tensors_) {
    sink(t.bytes(), t.nbytes);
    const uint64_t pad = align_up(t.nbytes, alignment_) - t.nbytes;
    if (pad) sink(zeros.data(), static_cast<size_t>(pad));
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  serialize([&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  });
  return out;
}

void GgufWriter::write(const std::string& path) const {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    throw Error(path + ": cannot create temporary file " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot open temporary file: " + std::strerror(errno));
  }
  int err = 0;
  try {
    serialize([&](const void* p, size_t n) {
      if (err == 0 && n && std::fwrite(p, 1, n, f) != n) err = errno ? errno : EIO;
    });
  } catch (...) {
    std::fclose(f);
    ::unlink(tmp.c_str());
    throw;
  }
  if (err == 0 && std::fflush(f) != 0) err = errno;
  if (err == 0 && ::fsync(::fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(path + ": write failed: " + std::strerror(err));
  }
}

}  // namespace edgellm::io
