// GgufFile: mapping the file and typed access to metadata and tensors.
// The structure itself is parsed and validated in gguf_parse.cpp.
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace edgellm::io {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "UINT8";
    case ValueType::INT8: return "INT8";
    case ValueType::UINT16: return "UINT16";
    case ValueType::INT16: return "INT16";
    case ValueType::UINT32: return "UINT32";
    case ValueType::INT32: return "INT32";
    case ValueType::FLOAT32: return "FLOAT32";
    case ValueType::BOOL: return "BOOL";
    case ValueType::STRING: return "STRING";
    case ValueType::ARRAY: return "ARRAY";
    case ValueType::UINT64: return "UINT64";
    case ValueType::INT64: return "INT64";
    case ValueType::FLOAT64: return "FLOAT64";
  }
  return "INVALID";
}

namespace {
bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::UINT16: case ValueType::INT16:
    case ValueType::UINT32: case ValueType::INT32: case ValueType::UINT64: case ValueType::INT64:
      return true;
    default:
      return false;
  }
}
bool is_float(ValueType t) { return t == ValueType::FLOAT32 || t == ValueType::FLOAT64; }

std::string type_desc(const Value& v) {
  if (!v.is_array()) return std::string(value_type_name(v.type));
  return "ARRAY of " + std::string(value_type_name(v.elem_type));
}
}  // namespace

size_t Value::array_size() const {
  if (!is_array()) return 0;
  switch (elem_type) {
    case ValueType::STRING: return strings.size();
    case ValueType::FLOAT32: case ValueType::FLOAT64: return floats.size();
    case ValueType::ARRAY: return nested.size();
    default: return ints.size();
  }
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // validated at open: cannot overflow
  return n;
}

int64_t TensorInfo::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < ne.size(); ++i) n *= ne[i];
  return n;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto fail = [&](const std::string& what) -> ModelFormatError {
    return ModelFormatError(path + ": " + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::string("cannot open file: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw fail(std::string("cannot stat file: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw fail("not a regular file");
  }
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, static_cast<size_t>(f->size_), PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (m == MAP_FAILED) throw fail(std::string("cannot mmap file: ") + std::strerror(err));
    f->mapping_ = m;
    f->mapping_size_ = static_cast<size_t>(f->size_);
    f->base_ = static_cast<const uint8_t*>(m);
  } else {
    ::close(fd);
  }
  f->parse(path);  // on throw, unique_ptr runs the destructor, which unmaps
  return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(const uint8_t* data, size_t size,
                                                const std::string& label) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = label;
  f->base_ = data;
  f->size_ = size;
  f->parse(label);
  return f;
}

void GgufFile::release_pages(const void* data, size_t n) const {
  if (!mapping_) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = reinterpret_cast<uintptr_t>(mapping_), hi = lo + mapping_size_;
  const auto p = reinterpret_cast<uintptr_t>(data);
  if (p < lo || n > hi - p) return;
  // Only whole pages inside the range: neighbours sharing a page stay resident.
  const uintptr_t b = (p + page - 1) & ~(page - 1), e = (p + n) & ~(page - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

GgufFile::~GgufFile() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const Value& v,
                             const char* expected) {
  throw ModelFormatError(path + ": key '" + std::string(key) + "' has type " + type_desc(v) +
                         ", expected " + expected);
}
}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer(v->type)) wrong_type(path_, key, *v, "an integer");
  if (const auto* u = std::get_if<uint64_t>(&v->scalar)) {
    if (*u > static_cast<uint64_t>(INT64_MAX))
      throw ModelFormatError(path_ + ": key '" + std::string(key) + "' value " +
                             std::to_string(*u) + " is out of range");
    return static_cast<int64_t>(*u);
  }
  return std::get<int64_t>(v->scalar);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (is_float(v->type)) return std::get<double>(v->scalar);
  if (!is_integer(v->type)) wrong_type(path_, key, *v, "a number");
  if (const auto* u = std::get_if<uint64_t>(&v->scalar)) return static_cast<double>(*u);
  return static_cast<double>(std::get<int64_t>(v->scalar));
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::BOOL) wrong_type(path_, key, *v, "BOOL");
  return std::get<bool>(v->scalar);
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::STRING) wrong_type(path_, key, *v, "STRING");
  return std::get<std::string>(v->scalar);
}

// Empty arrays are accepted whatever their declared element type.
const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return nullptr;
  if (!v->is_array() || (v->elem_type != ValueType::STRING && v->array_size() != 0))
    wrong_type(path_, key, *v, "ARRAY of STRING");
  return &v->strings;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) wrong_type(path_, key, *v, "ARRAY of integers");
  if (v->array_size() == 0) return std::vector<int64_t>{};
  if (!is_integer(v->elem_type)) wrong_type(path_, key, *v, "ARRAY of integers");
  return v->ints;
}

std::optional<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) wrong_type(path_, key, *v, "ARRAY of numbers");
  if (v->array_size() == 0) return std::vector<double>{};
  if (is_float(v->elem_type)) return v->floats;
  if (!is_integer(v->elem_type)) wrong_type(path_, key, *v, "ARRAY of numbers");
  std::vector<double> out;
  out.reserve(v->ints.size());
  for (int64_t i : v->ints)
    out.push_back(v->elem_type == ValueType::UINT64 ? static_cast<double>(static_cast<uint64_t>(i))
                                                    : static_cast<double>(i));
  return out;
}

namespace {
[[noreturn]] void missing(const std::string& path, std::string_view key) {
  throw ModelFormatError("missing required key '" + std::string(key) + "' in " + path);
}
}  // namespace

int64_t GgufFile::require_int(std::string_view key) const {
  if (auto v = get_int(key)) return *v;
  missing(path_, key);
}

double GgufFile::require_float(std::string_view key) const {
  if (auto v = get_float(key)) return *v;
  missing(path_, key);
}

std::string GgufFile::require_string(std::string_view key) const {
  if (auto v = get_string(key)) return *v;
  missing(path_, key);
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& GgufFile::require_tensor(std::string_view name,
                                           const std::vector<int64_t>& expected_ne) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw ModelFormatError(path_ + ": missing required tensor '" + std::string(name) + "'");
  if (t->ne != expected_ne) {
    auto shape = [](const std::vector<int64_t>& ne) {
      std::string s = "[";
      for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
      return s + "]";
    };
    throw ModelFormatError(path_ + ": tensor '" + std::string(name) + "' has shape " +
                           shape(t->ne) + ", expected " + shape(expected_ne));
  }
  return *t;
}

}  // namespace edgellm::io
