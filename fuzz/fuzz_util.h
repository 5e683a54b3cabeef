#pragma once
// Shared helpers of the libFuzzer targets: invariant checks that abort (so libFuzzer saves the
// input), a deterministic PRNG seeded from the input (choices replay exactly from a saved
// file), and the location of data files read at start-up.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace edgellm::fuzz {

[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: invariant failed: %s\n", target, what.c_str());
  std::abort();
}

inline void check(bool ok, const char* target, const char* what) {
  if (!ok) fail(target, what);
}

// FNV-1a of the input, then splitmix64: cheap, deterministic, well spread.
class Rng {
 public:
  explicit Rng(std::string_view data) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
    s_ = h;
  }
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t s_;
};

// $name if set, else the fallback.
inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// The conformance vocabularies (../shared beside the checkout; EDGELLM_FUZZ_VOCAB_DIR overrides).
inline std::string vocab_dir() {
  return env_or("EDGELLM_FUZZ_VOCAB_DIR", std::string(EDGELLM_FUZZ_SOURCE_DIR) + "/../shared/conformance/vocab");
}

// The model the request target loads (its vocabulary and chat template; no weights are run):
// EDGELLM_FUZZ_MODEL, else the first of the cache's small models that is there.
inline std::string model_path() {
  if (const char* m = std::getenv("EDGELLM_FUZZ_MODEL"); m && *m) return m;
  const char* home = std::getenv("HOME");
  const std::string dir = env_or("EDGELLM_MODEL_DIR", std::string(home ? home : "") + "/.cache/edgellm/models");
  for (const char* name : {"SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}) {
    const std::string p = dir + "/" + name;
    if (FILE* f = std::fopen(p.c_str(), "rb")) {
      std::fclose(f);
      return p;
    }
  }
  return dir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace edgellm::fuzz

namespace edgellm::fuzz {

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace edgellm::fuzz

namespace edgellm::fuzz {

// Known defects whose fix has not landed yet, by id, from EDGELLM_FUZZ_TOLERATE (comma-separated;
// scripts/test sets it so CI stays green meanwhile). Each id names one check in one target;
// fuzz/README.md lists them. Remove an id as soon as its fix lands.
inline bool tolerated(const char* id) {
  const char* v = std::getenv("EDGELLM_FUZZ_TOLERATE");
  if (!v) return false;
  const std::string list = std::string(",") + v + ",";
  return list.find(std::string(",") + id + ",") != std::string::npos;
}

}  // namespace edgellm::fuzz
