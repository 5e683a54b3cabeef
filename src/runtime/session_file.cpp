// Session::save / Session::restore: a session's tokens and KV cache in one file.
//
// Layout (little-endian, version 3; version 1 stored q8_0/q4_0 keys without the key offset of
// model/key_offset.h, version 2 with the bias-only offset and no key scale, so their rows
// would not match the keys this build writes):
//   "EDGLSESS"  u32 version  u32 0
//   u64 model checksum (XXH3 of the GGUF file)  u64 model file size
//   i32 n_layer  i32 kv_dim  u32 key type  u32 value type  i32 n_tokens
//   i32 tokens[n_tokens]
//   u32 bytes, adapters key (the LoRA set the rows were computed under; empty for the base model)
//   u32 bytes, app data (the front end's own state, e.g. chat turns)
//   per layer: key rows [n_tokens][k_row_bytes], then value rows [n_tokens][v_row_bytes]
//   u64 XXH3 of every byte before it
// Rows are stored as the cache holds them, so a restore is a copy, not a recomputation; the
// cache types must therefore match (converting q8_0 keys to f16 would not restore the same state).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "runtime/session_file.h"

#include "io/checksum.h"
#include "util/error.h"

namespace edgellm::runtime {
namespace {

constexpr char kMagic[8] = {'E', 'D', 'G', 'L', 'S', 'E', 'S', 'S'};
constexpr uint32_t kVersion = 3;

struct Header {
  char magic[8];
  uint32_t version, reserved;
  uint64_t model_checksum, model_size;
  int32_t n_layer, kv_dim;
  uint32_t k_type, v_type;
  int32_t n_tokens;
  uint32_t reserved2;  // keeps the struct free of padding bytes
};
static_assert(sizeof(Header) == 56);

constexpr uint32_t kMaxAppData = 64u << 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

class Writer {
 public:
  Writer(std::FILE* f, const std::string& path) : f_(f), path_(path) {}
  void put(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(path_ + ": write failed (disk full?)");
    sum_.update(p, n);
  }
  void finish() {
    const uint64_t d = sum_.digest();
    if (std::fwrite(&d, sizeof d, 1, f_) != 1 || std::fflush(f_) != 0)
      throw Error(path_ + ": write failed (disk full?)");
  }

 private:
  std::FILE* f_;
  const std::string& path_;
  io::StreamChecksum sum_;
};

class Reader {
 public:
  Reader(std::FILE* f, const std::string& path) : f_(f), path_(path) {}
  void get(void* p, size_t n) {
    if (n && std::fread(p, 1, n, f_) != n) throw SavedStateError(path_ + ": saved session is truncated");
    sum_.update(p, n);
  }
  void check_end() {
    uint64_t d = 0;
    if (std::fread(&d, sizeof d, 1, f_) != 1) throw SavedStateError(path_ + ": saved session is truncated");
    if (d != sum_.digest()) throw SavedStateError(path_ + ": saved session is damaged (checksum mismatch)");
    if (std::fgetc(f_) != EOF) throw SavedStateError(path_ + ": saved session has trailing bytes");
  }

 private:
  std::FILE* f_;
  const std::string& path_;
  io::StreamChecksum sum_;
};

}  // namespace

void save_kv_state(const Engine& engine_, const model::KvCache& cache_, const std::vector<int32_t>& tokens_,
                   const std::string& path, const std::string& app_data, const std::string& adapters) {
  if (tokens_.size() != static_cast<size_t>(cache_.size()))
    throw Error("cannot save a session whose cache (" + std::to_string(cache_.size()) + " positions) differs from "
                "its tokens (" + std::to_string(tokens_.size()) + ")");
  if (app_data.size() > kMaxAppData || adapters.size() > kMaxAppData)
    throw SavedStateError(path + ": session application data over 64 MiB");
  const std::string tmp = path + ".tmp";
  File f(std::fopen(tmp.c_str(), "wb"));
  if (!f) throw Error(path + ": cannot write the session: " + std::strerror(errno));
  try {
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.model_checksum = engine_.model_checksum();
    h.model_size = engine_.model().file().file_size();
    h.n_layer = cache_.n_layer();
    h.kv_dim = cache_.kv_dim();
    h.k_type = static_cast<uint32_t>(cache_.types().k);
    h.v_type = static_cast<uint32_t>(cache_.types().v);
    h.n_tokens = static_cast<int32_t>(tokens_.size());
    Writer w(f.get(), path);
    w.put(&h, sizeof h);
    w.put(tokens_.data(), tokens_.size() * sizeof(int32_t));
    for (const std::string* blob : {&adapters, &app_data}) {
      const auto len = static_cast<uint32_t>(blob->size());
      w.put(&len, sizeof len);
      w.put(blob->data(), blob->size());
    }
    const size_t n = tokens_.size();
    // Whole position rows (all KV heads), whatever the cache's layout in memory.
    std::vector<uint8_t> rows;
    for (int32_t l = 0; l < h.n_layer; ++l) {
      if (n == 0) break;
      rows.resize(n * cache_.k_row_bytes());
      for (size_t p = 0; p < n; ++p) cache_.read_k(l, static_cast<int32_t>(p), &rows[p * cache_.k_row_bytes()]);
      w.put(rows.data(), rows.size());
      rows.resize(n * cache_.v_row_bytes());
      for (size_t p = 0; p < n; ++p) cache_.read_v(l, static_cast<int32_t>(p), &rows[p * cache_.v_row_bytes()]);
      w.put(rows.data(), rows.size());
    }
    w.finish();
    if (std::fclose(f.release()) != 0) throw Error(path + ": write failed (disk full?)");
  } catch (...) {
    f.reset();
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the session: " + why);
  }
}

namespace {

// Reads and checks the header and tokens (everything before the application data).
std::string read_blob(Reader& r, const std::string& path) {
  uint32_t len = 0;
  r.get(&len, sizeof len);
  if (len > kMaxAppData) throw SavedStateError(path + ": saved session is damaged (a field is too long)");
  std::string out(len, '\0');
  r.get(out.data(), out.size());
  return out;
}

std::string describe_adapters(const std::string& key) { return key.empty() ? "no LoRA adapter" : "LoRA " + key; }

// adapters: the key the caller runs under (compared), or null to return the saved one in `saved`.
std::vector<int32_t> read_head(Reader& r, const Engine& engine_, const model::KvCache* cache_, model::KvTypes types,
                               const std::string* adapters, const std::string& path, Header& h,
                               std::string* saved = nullptr) {
  r.get(&h, sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw SavedStateError(path + ": not an edgellm saved session");
  if (h.version != kVersion)
    throw SavedStateError(path + ": saved session version " + std::to_string(h.version) +
                          " is not supported (this build reads " + std::to_string(kVersion) + ")");
  if (h.model_size != engine_.model().file().file_size() || h.model_checksum != engine_.model_checksum())
    throw SavedStateError(path + ": saved with another model file than " + engine_.model().file().path() +
                          "; load the model it was saved with, or start a new session");
  if (h.n_layer != engine_.config().n_layer || h.kv_dim != engine_.config().kv_dim())
    throw SavedStateError(path + ": saved session's cache shape does not match the model");
  if (h.k_type != static_cast<uint32_t>(types.k) || h.v_type != static_cast<uint32_t>(types.v))
    throw SavedStateError(path + ": saved with different KV cache types (-ctk " +
                          model::kv_type_name(static_cast<io::TensorType>(h.k_type)) + " -ctv " +
                          model::kv_type_name(static_cast<io::TensorType>(h.v_type)) +
                          "); run with the same -ctk / -ctv as when it was saved");
  if (h.n_tokens < 0 || (cache_ && h.n_tokens >= cache_->n_ctx()))
    throw SavedStateError(path + ": saved session holds " + std::to_string(h.n_tokens) + " tokens, more than the context of " +
                std::to_string(cache_ ? cache_->n_ctx() : 0) + " leaves room for; raise the context size (-c)");
  if (h.n_tokens > (1 << 24)) throw SavedStateError(path + ": saved session is damaged (token count)");
  std::vector<int32_t> tokens(static_cast<size_t>(h.n_tokens));
  r.get(tokens.data(), tokens.size() * sizeof(int32_t));
  const int32_t n_vocab = engine_.config().n_vocab;
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab) throw SavedStateError(path + ": saved session is damaged: token id " + std::to_string(t) +
                                           " is outside the vocabulary");
  std::string saved_adapters = read_blob(r, path);
  if (adapters && saved_adapters != *adapters)
    throw SavedStateError(path + ": saved with " + describe_adapters(saved_adapters) + " but this run uses " +
                describe_adapters(*adapters) + "; use the same --lora as when it was saved");
  if (saved) *saved = std::move(saved_adapters);
  return tokens;
}

}  // namespace

SavedHead peek_saved_state(const Engine& engine, model::KvTypes types, const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open the saved session: " + std::strerror(errno));
  Reader r(f.get(), path);
  Header h{};
  SavedHead out;
  out.tokens = read_head(r, engine, nullptr, types, nullptr, path, h, &out.adapters);
  return out;
}

void restore_kv_state(const Engine& engine_, model::KvCache& cache_, std::vector<int32_t>& tokens_,
                      const std::string& path, std::string* app_data, const std::string& adapters) {
  cache_.clear();
  tokens_.clear();
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open the saved session: " + std::strerror(errno));
  try {
    Reader r(f.get(), path);
    Header h{};
    std::vector<int32_t> tokens = read_head(r, engine_, &cache_, cache_.types(), &adapters, path, h);
    std::string app = read_blob(r, path);
    const size_t n = tokens.size();
    std::vector<uint8_t> rows;
    for (int32_t l = 0; l < h.n_layer && n > 0; ++l) {
      rows.resize(n * cache_.k_row_bytes());
      r.get(rows.data(), rows.size());
      for (size_t p = 0; p < n; ++p) cache_.store_k(l, static_cast<int32_t>(p), &rows[p * cache_.k_row_bytes()]);
      rows.resize(n * cache_.v_row_bytes());
      r.get(rows.data(), rows.size());
      for (size_t p = 0; p < n; ++p) cache_.store_v(l, static_cast<int32_t>(p), &rows[p * cache_.v_row_bytes()]);
    }
    r.check_end();
    cache_.set_size(h.n_tokens);
    tokens_ = std::move(tokens);
    if (app_data) *app_data = std::move(app);
  } catch (...) {
    cache_.clear();
    tokens_.clear();
    throw;
  }
}

std::string lora_key(const model::LoraSet& set) {
  std::string key;
  for (const auto& e : set.entries) {
    std::error_code ec;
    const auto canonical = std::filesystem::weakly_canonical(e.adapter->path(), ec);
    char scale[32];
    std::snprintf(scale, sizeof scale, "%.9g", static_cast<double>(e.scale));
    key += (key.empty() ? "" : ", ") + (ec ? e.adapter->path() : canonical.string()) + ":" + scale;
  }
  return key;
}

std::optional<model::LoraSet> lora_set_from_key(const std::string& key, const model::LoraSet& loaded) {
  model::LoraSet out;
  size_t pos = 0;
  while (pos < key.size()) {
    if (!out.empty()) {
      if (key.compare(pos, 2, ", ") != 0) return std::nullopt;
      pos += 2;
    }
    // The loaded adapter whose key prefix ("PATH:") starts here; then the scale up to ", " or the end.
    bool found = false;
    for (const auto& e : loaded.entries) {
      model::LoraSet one;
      one.entries.push_back({e.adapter, 1.0f});
      const std::string prefix = lora_key(one);
      const std::string name = prefix.substr(0, prefix.rfind(':') + 1);
      if (key.compare(pos, name.size(), name) != 0) continue;
      const size_t start = pos + name.size();
      const size_t end = std::min(key.find(", ", start), key.size());
      const std::string scale = key.substr(start, end - start);
      char* stop = nullptr;
      const float v = std::strtof(scale.c_str(), &stop);
      if (scale.empty() || stop != scale.c_str() + scale.size()) return std::nullopt;
      out.entries.push_back({e.adapter, v});
      pos = end;
      found = true;
      break;
    }
    if (!found) return std::nullopt;
  }
  // The scales were printed with 9 digits, which a float survives: the rebuilt set has the same key.
  if (lora_key(out) != key) return std::nullopt;
  return out;
}

void Session::save(const std::string& path, const std::string& app_data) const {
  save_kv_state(engine_, cache_, tokens_, path, app_data, lora_key(lora_));
}

int32_t Session::restore(const std::string& path, std::string* app_data) {
  restore_kv_state(engine_, cache_, tokens_, path, app_data, lora_key(lora_));
  return static_cast<int32_t>(tokens_.size());
}

}  // namespace edgellm::runtime
