// llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf with .inp/.out files).
#include <gtest/gtest.h>

#include <sstream>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace edgellm::tokenizer {
namespace {

using namespace testing;

std::string unicode_piece(uint8_t b) { return unicode::byte_to_piece(b); }

struct Case {
  std::string input;
  std::vector<int32_t> ids;
};

// .inp: each input is followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per input.
std::vector<Case> read_cases(const std::string& vocab) {
  const std::string inp = read_all(vocab + ".inp");
  const std::string outp = read_all(vocab + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  size_t pos = 0;
  while (true) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;
    cases.push_back({inp.substr(pos, next - pos), {}});
    pos = next + sep.size();
  }
  std::istringstream lines(outp);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line) && i < cases.size()) {
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << "fewer output lines than inputs in " << vocab << ".out";
  return cases;
}

// round_trip: decode(encode(x)) == x, which a lowercasing WordPiece vocabulary cannot give.
void run_conformance(const std::string& name, bool round_trip = true) {
  const std::string path = vocab_path(name);
  EDGELLM_REQUIRE_FILE(path);
  EDGELLM_REQUIRE_FILE(path + ".inp");
  auto l = load(path);
  const auto cases = read_cases(path);
  ASSERT_GT(cases.size(), 30u);
  int failures = 0;
  for (const auto& c : cases) {
    const auto ids = l.tok->encode(c.input, /*add_bos=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, c.ids) << "input: \"" << c.input << "\"";
    failures += ids != c.ids;
    // Round trip: the decoded ids give back the input exactly.
    if (round_trip) {
      EXPECT_EQ(l.tok->decode(ids), c.input);
    }
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " cases";
}

TEST(TokenizerConformance, Gpt2Vocab) { run_conformance("ggml-vocab-gpt-2.gguf"); }
TEST(TokenizerConformance, LlamaSpmVocab) { run_conformance("ggml-vocab-llama-spm.gguf"); }
TEST(TokenizerConformance, StarcoderVocab) { run_conformance("ggml-vocab-starcoder.gguf"); }
TEST(TokenizerConformance, FalconVocab) { run_conformance("ggml-vocab-falcon.gguf"); }
TEST(TokenizerConformance, DeepSeekLlmVocab) { run_conformance("ggml-vocab-deepseek-llm.gguf"); }
TEST(TokenizerConformance, BertBgeVocab) { run_conformance("ggml-vocab-bert-bge.gguf", false); }

// Falcon's vocabulary lacks byte 0x0B: HF drops it before merging, so the spaces around it
// merge as if it were not there.
TEST(TokenizerConformance, BytesMissingFromTheVocabularyVanishBeforeMerging) {
  const std::string path = vocab_path("ggml-vocab-falcon.gguf");
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  ASSERT_FALSE(l.tok->find_token(unicode_piece(0x0B)).has_value());
  EXPECT_EQ(l.tok->encode(" \x0B  x", false, false), l.tok->encode("   x", false, false));
}

}  // namespace
}  // namespace edgellm::tokenizer
