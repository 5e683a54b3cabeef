#include "cli/safetensors.h"

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "ops/fp16.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit

size_t dtype_size(const std::string& d) {
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

}  // namespace

int64_t SafeTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw Error("cannot open " + path);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read the size of " + path);
  unsigned char len_bytes[8];
  if (size < 8 || !in_.read(reinterpret_cast<char*>(len_bytes), 8))
    throw ModelFormatError(path + ": too short for a safetensors file");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | len_bytes[i];
  if (hlen > kMaxHeader || hlen > size - 8) throw ModelFormatError(path + ": bad safetensors header length");
  std::string header(hlen, '\0');
  if (!in_.read(header.data(), static_cast<std::streamsize>(hlen))) throw ModelFormatError(path + ": truncated header");
  data_start_ = 8 + hlen;
  const uint64_t data_size = size - data_start_;
  nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (!j.is_object()) throw ModelFormatError(path + ": the safetensors header is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& v = it.value();
    const std::string where = path + ": tensor '" + it.key() + "'";
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
        !v["shape"].is_array() || !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw ModelFormatError(where + " has a malformed entry");
    SafeTensor t;
    t.dtype = v["dtype"].get<std::string>();
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) throw ModelFormatError(where + " has a bad shape");
      t.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) throw ModelFormatError(where + " has bad data offsets");
    t.begin = v["data_offsets"][0].get<uint64_t>();
    t.end = v["data_offsets"][1].get<uint64_t>();
    const size_t es = dtype_size(t.dtype);
    if (es == 0) throw ModelFormatError(where + " has unknown dtype " + t.dtype);
    if (t.begin > t.end || t.end > data_size)
      throw ModelFormatError(where + " lies outside the file");
    // numel fits: each dim <= 2^40 and the bytes are bounded by the file size below.
    long double n = 1;
    for (int64_t d : t.shape) n *= static_cast<long double>(d);
    if (n * es != static_cast<long double>(t.end - t.begin))
      throw ModelFormatError(where + ": its byte range does not match its shape and dtype");
    tensors_.emplace(it.key(), std::move(t));
  }
}

std::vector<float> SafetensorsFile::read_f32(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw ModelFormatError(path_ + ": tensor '" + name + "' is missing");
  const SafeTensor& t = it->second;
  if (!shape.empty() && t.shape != shape) {
    auto str = [](const std::vector<int64_t>& s) {
      std::string o = "[";
      for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
      return o + "]";
    };
    throw ModelFormatError(path_ + ": tensor '" + name + "' has shape " + str(t.shape) + ", expected " + str(shape));
  }
  if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16")
    throw ModelFormatError(path_ + ": tensor '" + name + "' has dtype " + t.dtype + " (F32, F16 or BF16 expected)");
  std::vector<char> raw(t.end - t.begin);
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(data_start_ + t.begin));
  if (!in_.read(raw.data(), static_cast<std::streamsize>(raw.size()))) throw Error(path_ + ": read failed");
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (raw.empty()) return out;  // a tensor with a zero dimension (memcpy of null is undefined)
  if (t.dtype == "F32") {
    std::memcpy(out.data(), raw.data(), raw.size());  // little-endian hosts, as GGUF
  } else {
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, raw.data() + 2 * i, 2);
      out[i] = t.dtype == "F16" ? ops::f16_to_f32(h) : ops::bf16_to_f32(h);
    }
  }
  return out;
}

}  // namespace edgellm::cli
