// libFuzzer target for the safetensors reader of `edgellm convert` (cli/safetensors.h): a
// downloaded model folder's model.safetensors is untrusted. Input: the file's bytes, written to a
// memfd (the reader takes a path). Only ModelFormatError / Error may escape; every tensor the
// header accepted must read back as numel floats (F32/F16/BF16) or be refused by type.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "cli/safetensors.h"
#include "fuzz_util.h"
#include "util/error.h"

using namespace edgellm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("safetensors_fuzz", 0);
  if (fd < 0) fuzz::fail("safetensors_fuzz", "memfd_create failed");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    fuzz::fail("safetensors_fuzz", "cannot write the memfd");
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    cli::SafetensorsFile f(path);
    for (const auto& [name, t] : f.tensors()) {
      fuzz::check(t.begin <= t.end && t.end <= size, "safetensors_fuzz", "tensor range outside the file");
      const bool floats = t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16";
      try {
        const auto v = f.read_f32(name, t.shape);
        fuzz::check(floats, "safetensors_fuzz", "a non-float tensor was read as floats");
        fuzz::check(static_cast<int64_t>(v.size()) == t.numel(), "safetensors_fuzz", "read size != numel");
      } catch (const ModelFormatError&) {
        fuzz::check(!floats, "safetensors_fuzz", "a float tensor the header accepted was refused");
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
