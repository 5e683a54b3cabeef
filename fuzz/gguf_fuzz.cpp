// libFuzzer target for the GGUF reader. Any input must either parse or throw
// ModelFormatError; anything else (crash, sanitizer report, other exception) is a bug.
// Inputs that parse are touched through every accessor, then re-written with GgufWriter and
// parsed again: the copy must hold the same metadata and tensor bytes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "io/gguf.h"
#include "io/gguf_writer.h"

using namespace edgellm;
using namespace edgellm::io;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "gguf_fuzz invariant failed: %s\n", what);
    std::abort();
  }
}

bool same_double(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  if (!a.is_array()) {
    if (a.scalar.index() != b.scalar.index()) return false;
    if (const auto* d = std::get_if<double>(&a.scalar)) return same_double(*d, std::get<double>(b.scalar));
    return a.scalar == b.scalar;
  }
  if (a.elem_type != b.elem_type || a.array_size() != b.array_size()) return false;
  if (a.ints != b.ints || a.strings != b.strings) return false;
  for (size_t i = 0; i < a.floats.size(); ++i)
    if (!same_double(a.floats[i], b.floats[i])) return false;
  for (size_t i = 0; i < a.nested.size(); ++i)
    if (!same_value(a.nested[i], b.nested[i])) return false;
  return true;
}

// Calls every getter on `key`; wrong-type errors are the documented outcome.
template <typename F>
void try_get(F&& f) {
  try {
    f();
  } catch (const ModelFormatError&) {
  }
}

void touch(const GgufFile& f, size_t size) {
  volatile uint64_t sink = f.version() + f.file_size() + f.alignment() + f.data_start();
  check(f.file_size() == size, "file_size");
  for (const auto& kv : f.metadata()) {
    const std::string& key = kv.first;  // named copies: clang-14 lambdas can't capture bindings
    const Value& v = kv.second;
    check(f.find(key) == &v, "find returns the entry");
    sink = sink + value_type_name(v.type).size() + v.array_size();
    try_get([&] { sink = sink + f.get_int(key).value_or(0); });
    try_get([&] { sink = sink + static_cast<uint64_t>(f.get_float(key).value_or(0) != 0); });
    try_get([&] { sink = sink + f.get_bool(key).value_or(false); });
    try_get([&] { sink = sink + f.get_string(key).value_or("").size(); });
    try_get([&] { auto* s = f.get_string_array(key); sink = sink + (s ? s->size() : 0); });
    try_get([&] { sink = sink + f.get_int_array(key).value_or(std::vector<int64_t>{}).size(); });
    try_get([&] { sink = sink + f.get_float_array(key).value_or(std::vector<double>{}).size(); });
    try_get([&] { sink = sink + f.require_int(key); });
    try_get([&] { sink = sink + f.require_string(key).size(); });
  }
  for (const TensorInfo& t : f.tensors()) {
    check(f.find_tensor(t.name) == &t, "find_tensor");
    check(&f.require_tensor(t.name, t.ne) == &t, "require_tensor");
    check(t.data >= f.bytes() && t.nbytes <= size && t.data - f.bytes() <= static_cast<ptrdiff_t>(size - t.nbytes),
          "tensor data inside the file");
    check(t.n_elements() > 0 && t.rows() > 0, "positive element count");
    sink = sink + t.data[0] + t.data[t.nbytes - 1];
    std::vector<int64_t> wrong = t.ne;
    wrong.push_back(1);
    try_get([&] { f.require_tensor(t.name, wrong); });
  }
  (void)sink;
}

void round_trip(const GgufFile& f) {
  GgufWriter w;
  try {
    for (const auto& [key, v] : f.metadata()) w.set(key, v);
    for (const TensorInfo& t : f.tensors())
      w.add_tensor_view(t.name, t.type, t.ne, t.data, static_cast<size_t>(t.nbytes));
  } catch (const InvalidArgument&) {
    return;  // e.g. an empty tensor name: readable, but the writer refuses to produce one
  }
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto g = GgufFile::from_memory(bytes.data(), bytes.size(), "rewritten");
  check(g->metadata().size() == f.metadata().size(), "kv count after rewrite");
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    check(g->metadata()[i].first == f.metadata()[i].first, "key after rewrite");
    check(same_value(g->metadata()[i].second, f.metadata()[i].second), "value after rewrite");
  }
  check(g->tensors().size() == f.tensors().size(), "tensor count after rewrite");
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo& a = f.tensors()[i];
    const TensorInfo& b = g->tensors()[i];
    check(a.name == b.name && a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes,
          "tensor info after rewrite");
    check(std::memcmp(a.data, b.data, a.nbytes) == 0, "tensor bytes after rewrite");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f;
  try {
    f = GgufFile::from_memory(data, size, "fuzz.gguf");
  } catch (const ModelFormatError& e) {
    check(std::strncmp(e.what(), "fuzz.gguf: ", 11) == 0, "error names the file");
    check(std::strchr(e.what(), '\n') == nullptr, "error is one line");
    return 0;
  }
  touch(*f, size);
  round_trip(*f);
  return 0;
}
