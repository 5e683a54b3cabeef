#pragma once
// Locating test inputs: conformance vocabularies under EDGELLM_SHARED_DIR and models under
// EDGELLM_MODEL_DIR (default ~/.cache/edgellm/models). Tests skip when a file is absent.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::tokenizer::testing {

inline std::string vocab_path(const std::string& name) {
  return std::string(EDGELLM_SHARED_DIR) + "/conformance/vocab/" + name;
}

inline std::string model_path(const std::string& name) {
  std::string dir;
  if (const char* d = std::getenv("EDGELLM_MODEL_DIR")) {
    dir = d;
  } else if (const char* home = std::getenv("HOME")) {
    dir = std::string(home) + "/.cache/edgellm/models";
  }
  return dir + "/" + name;
}

inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

inline std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tokenizer together with the mapped file it was read from.
struct Loaded {
  std::unique_ptr<io::GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
};

inline Loaded load(const std::string& path) {
  Loaded l;
  l.file = io::GgufFile::open(path);
  l.tok = Tokenizer::from_gguf(*l.file);
  return l;
}

constexpr const char* kSmolLM = "SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr const char* kGemma = "gemma-3-270m-q4_k_m.gguf";

}  // namespace edgellm::tokenizer::testing

#define EDGELLM_REQUIRE_FILE(path)                                  \
  do {                                                              \
    if (!edgellm::tokenizer::testing::exists(path))                 \
      GTEST_SKIP() << "test input not found: " << (path);          \
  } while (0)
