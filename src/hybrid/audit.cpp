#include "hybrid/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "util/error.h"

namespace edgellm::hybrid {

namespace {

// SHA-256 (FIPS 180-4), small and dependency-free.
struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block[64];
  size_t fill = 0;
  uint64_t bits = 0;

  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const uint8_t* p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  void update(const uint8_t* p, size_t n) {
    bits += uint64_t(n) * 8;
    while (n > 0) {
      size_t take = std::min(n, 64 - fill);
      std::memcpy(block + fill, p, take);
      fill += take, p += take, n -= take;
      if (fill == 64) compress(block), fill = 0;
    }
  }
  std::string hex() {
    uint64_t total = bits;
    uint8_t pad = 0x80;
    update(&pad, 1);
    uint8_t zero = 0;
    while (fill != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(total >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h)
      for (int s = 28; s >= 0; s -= 4) out += digits[(v >> s) & 15];
    return out;
  }
};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string iso_time(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// Caller-supplied identifiers are cut so a client cannot smuggle a prompt into the log.
std::string clip(const std::string& s) { return s.size() > 128 ? s.substr(0, 128) : s; }

}  // namespace

std::string sha256_hex(std::string_view data) {
  Sha256 s;
  s.update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return s.hex();
}

AuditLog::AuditLog(const AuditConfig& cfg) : cfg_(cfg) {
  fd_ = ::open(cfg_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error("audit log: cannot open '" + cfg_.path + "': " + std::strerror(errno));
  last_sync_ms_ = wall_ms();
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) {
    if (cfg_.fsync != "never") ::fsync(fd_);
    ::close(fd_);
  }
}

std::string AuditLog::prompt_hash(std::string_view prompt) const {
  std::string salted = cfg_.hash_salt;
  salted.push_back('\0');
  salted.append(prompt);
  return sha256_hex(salted);
}

nlohmann::json AuditLog::to_json(const AuditEntry& e) {
  nlohmann::json j;
  j["time"] = iso_time(wall_ms());
  j["request_id"] = clip(e.request_id);
  j["app"] = clip(e.app);
  j["profile"] = clip(e.profile);
  j["status"] = e.status;
  j["route"] = e.route.to_json();
  j["tokens"] = {{"prompt", e.prompt_tokens}, {"completion", e.completion_tokens},
                 {"cloud_prompt", e.cloud_prompt_tokens}, {"cloud_completion", e.cloud_completion_tokens}};
  nlohmann::json pii = nlohmann::json::object();
  for (size_t k = 0; k < kPiiKindCount; ++k)
    if (e.pii_counts[k] > 0) pii[std::string(pii_kind_name(static_cast<PiiKind>(k)))] = e.pii_counts[k];
  j["pii"] = pii;
  j["prompt_sha256"] = e.prompt_sha256;
  return j;
}

void AuditLog::write(const AuditEntry& e) {
  std::string line = to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error("audit log: write to '" + cfg_.path + "' failed: " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  dirty_ = true;
  int64_t now = wall_ms();
  if (cfg_.fsync == "always" || (cfg_.fsync == "interval" && now - last_sync_ms_ >= cfg_.fsync_interval_ms)) {
    ::fdatasync(fd_);
    last_sync_ms_ = now;
    dirty_ = false;
  }
}

void AuditLog::sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (dirty_) ::fdatasync(fd_);
  dirty_ = false;
  last_sync_ms_ = wall_ms();
}

}  // namespace edgellm::hybrid
