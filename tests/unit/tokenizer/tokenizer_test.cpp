// Encode/decode behaviour on real vocabularies: special tokens, BOS, round trips, invalid
// UTF-8, and load errors on synthetic vocabularies.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "io/gguf_writer.h"
#include "test_util.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

using namespace testing;

bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

const std::vector<std::string>& sample_texts() {
  static const std::vector<std::string> t = {
      "", " ", "Hello world", "  two  spaces  ", "tabs\tand\nnewlines\r\n", "I'm 42 years old.",
      "中文字符和日本語のテキスト", "emoji 👨‍👩‍👧‍👦 👍🏽 🇫🇷", "e\xCC\x81 combining", "مرحبا नमस्ते สวัสดี",
      "def f(x):\n    return x**2\n", "<|im_start|>not special<|im_end|>", "<end_of_turn>",
      "1234567890 3.14159", "\xC2\xA0nbsp\xE3\x80\x80ideographic"};
  return t;
}

TEST(Tokenizer, SmolLM2SpecialTokensOnlyWithParseSpecial) {
  const std::string path = model_path(kSmolLM);
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  const Tokenizer& tok = *l.tok;
  const int32_t im_start = tok.find_token("<|im_start|>").value();
  const int32_t im_end = tok.find_token("<|im_end|>").value();
  EXPECT_TRUE(tok.is_control(im_start));
  const std::string text = "<|im_start|>user\nhi<|im_end|>";

  const auto special = tok.encode(text, false, true);
  ASSERT_GE(special.size(), 3u);
  EXPECT_EQ(special.front(), im_start);
  EXPECT_EQ(special.back(), im_end);
  EXPECT_EQ(tok.decode(special), text);
  EXPECT_EQ(tok.decode(special, /*skip_special=*/true), "user\nhi");

  // As plain text, hostile input cannot produce control tokens.
  const auto plain = tok.encode(text, false, false);
  EXPECT_FALSE(contains(plain, im_start));
  EXPECT_FALSE(contains(plain, im_end));
  EXPECT_GT(plain.size(), special.size());
  EXPECT_EQ(tok.decode(plain), text);

  // Longest match wins and text between specials is tokenized normally.
  const auto two = tok.encode("a<|im_end|><|im_end|>b", false, true);
  EXPECT_EQ(std::count(two.begin(), two.end(), im_end), 2);
  EXPECT_TRUE(tok.is_end_of_generation(im_end));
  EXPECT_FALSE(tok.is_end_of_generation(im_start));
  // SmolLM2 asks for no BOS, so add_bos has no effect.
  EXPECT_FALSE(tok.add_bos_default());
  EXPECT_EQ(tok.encode("hi", true, false), tok.encode("hi", false, false));
}

TEST(Tokenizer, SmolLM2RoundTripsValidText) {
  const std::string path = model_path(kSmolLM);
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  for (const auto& s : sample_texts()) {
    EXPECT_EQ(l.tok->decode(l.tok->encode(s, false, false)), s) << s;
  }
}

// The gpt-2 vocabulary holds all 256 bytes, so any byte string round-trips, and invalid
// UTF-8 is encoded deterministically: each bad byte is its own pre-token.
TEST(Tokenizer, ByteLevelRoundTripsArbitraryBytes) {
  const std::string path = vocab_path("ggml-vocab-gpt-2.gguf");
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    const auto ids = l.tok->encode(s, false, false);
    EXPECT_EQ(l.tok->decode(ids), s);
    EXPECT_EQ(l.tok->encode(s, false, false), ids);  // deterministic
  }
  // "ab" + 0xFF + "cd": the bad byte is the single token of byte 0xFF, between "ab" and "cd".
  const auto ids = l.tok->encode("ab\xFF" "cd", false, false);
  const int32_t ff = l.tok->find_token(unicode::byte_to_piece(0xFF)).value();
  const auto ab = l.tok->encode("ab", false, false), cd = l.tok->encode("cd", false, false);
  std::vector<int32_t> want = ab;
  want.push_back(ff);
  want.insert(want.end(), cd.begin(), cd.end());
  EXPECT_EQ(ids, want);
}

TEST(Tokenizer, SpmRoundTripsArbitraryBytes) {
  const std::string path = vocab_path("ggml-vocab-llama-spm.gguf");
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  std::mt19937 rng(11);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    const auto ids = l.tok->encode(s, false, false);
    EXPECT_EQ(l.tok->decode(ids), s);
  }
  // Invalid bytes become byte-fallback tokens <0xNN>.
  const auto ids = l.tok->encode("\xFF", false, false);
  ASSERT_EQ(ids.size(), 2u);  // space prefix, then the byte
  EXPECT_EQ(l.tok->token_text(ids[1]), "<0xFF>");
  // Llama's SentencePiece vocabulary asks for BOS.
  EXPECT_TRUE(l.tok->add_bos_default());
  EXPECT_EQ(l.tok->encode("hi", true, false).front(), l.tok->bos_id());
  EXPECT_EQ(l.tok->decode(l.tok->encode("hi", true, false), true), "hi");
  EXPECT_EQ(l.tok->decode(l.tok->encode("hi", true, false)), "<s>hi");
}

TEST(Tokenizer, Gemma3UserDefinedAndControlTokens) {
  const std::string path = model_path(kGemma);
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  const Tokenizer& tok = *l.tok;
  const int32_t sot = tok.find_token("<start_of_turn>").value();
  const int32_t eot = tok.find_token("<end_of_turn>").value();
  const int32_t nl2 = tok.find_token("\n\n").value();
  // User-defined "\n\n" is always split out; control tokens only with parse_special.
  EXPECT_TRUE(contains(tok.encode("a\n\nb", false, false), nl2));
  const std::string turn = "<start_of_turn>user\nhello<end_of_turn>\n";
  const auto special = tok.encode(turn, false, true);
  EXPECT_EQ(special.front(), sot);
  EXPECT_TRUE(contains(special, eot));
  const auto plain = tok.encode(turn, false, false);
  EXPECT_FALSE(contains(plain, sot));
  EXPECT_FALSE(contains(plain, eot));
  EXPECT_TRUE(tok.is_end_of_generation(eot));
  EXPECT_TRUE(tok.is_end_of_generation(tok.eos_id()));
  // BOS by default, no space prefix.
  const auto with_bos = tok.encode("Hello", true, false);
  EXPECT_EQ(with_bos.front(), tok.bos_id());
  EXPECT_EQ(tok.token_text(with_bos[1]), "Hello");
  for (const auto& s : sample_texts()) EXPECT_EQ(tok.decode(tok.encode(s, true, false), true), s) << s;
  EXPECT_THROW(tok.decode({tok.n_vocab()}), InvalidArgument);
  EXPECT_THROW(tok.token_bytes(-1), InvalidArgument);
}

// ---- load errors on synthetic vocabularies ----

struct Synthetic {
  std::vector<uint8_t> bytes;
  std::unique_ptr<io::GgufFile> file;
};

std::unique_ptr<Tokenizer> load_synthetic(const io::GgufWriter& w, Synthetic& keep) {
  keep.bytes = w.to_bytes();
  keep.file = io::GgufFile::from_memory(keep.bytes.data(), keep.bytes.size(), "vocab.gguf");
  return Tokenizer::from_gguf(*keep.file);
}

io::GgufWriter tiny_bpe() {
  io::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "smollm");
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(unicode::byte_to_piece(static_cast<uint8_t>(b)));
  tokens.push_back("ab");
  tokens.push_back("abc");
  tokens.push_back("<|special|>");
  std::vector<int64_t> types(tokens.size(), 1);
  types.back() = 3;
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_int_array("tokenizer.ggml.token_type", io::ValueType::INT32, types);
  w.set_string_array("tokenizer.ggml.merges", {"a b", "ab c"});
  return w;
}

TEST(Tokenizer, TinyBpeMergesByRank) {
  Synthetic keep;
  auto tok = load_synthetic(tiny_bpe(), keep);
  EXPECT_EQ(tok->encode("abc", false, false), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok->encode("abab", false, false), (std::vector<int32_t>{256, 256}));
  EXPECT_EQ(tok->encode("cab", false, false), (std::vector<int32_t>{'c', 256}));
  EXPECT_EQ(tok->encode("x<|special|>", false, true), (std::vector<int32_t>{'x', 258}));
}

TEST(Tokenizer, LoadErrorsNameTheProblem) {
  Synthetic keep;
  auto expect_error = [&](io::GgufWriter w, const std::string& needle) {
    try {
      load_synthetic(w, keep);
      ADD_FAILURE() << "expected ModelFormatError containing '" << needle << "'";
    } catch (const ModelFormatError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto w = tiny_bpe();
  w.remove("tokenizer.ggml.model");
  expect_error(w, "tokenizer.ggml.model");
  w = tiny_bpe();
  w.set_string("tokenizer.ggml.model", "wordpiece");
  expect_error(w, "unsupported tokenizer.ggml.model 'wordpiece'");
  w = tiny_bpe();
  w.set_string("tokenizer.ggml.pre", "klingon");
  expect_error(w, "klingon");
  w = tiny_bpe();
  w.set_int_array("tokenizer.ggml.token_type", io::ValueType::INT32, {1, 1});
  expect_error(w, "token_type has 2 entries");
  w = tiny_bpe();
  w.remove("tokenizer.ggml.merges");
  expect_error(w, "tokenizer.ggml.merges");
  w = tiny_bpe();
  w.set_string("tokenizer.ggml.model", "llama");  // SentencePiece needs scores
  expect_error(w, "scores");
}

// Issue 17: an invalid byte the byte-level vocabulary has no token for becomes U+FFFD (the
// documented rule), never silently nothing; a well-formed character's missing byte is still
// dropped, as HF tokenizers do.
TEST(Tokenizer, InvalidByteMissingFromVocabularyBecomesReplacementCharacter) {
  io::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "smollm");
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b)
    if (b != 0xFF && b != 0x1D) tokens.push_back(unicode::byte_to_piece(static_cast<uint8_t>(b)));
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_int_array("tokenizer.ggml.token_type", io::ValueType::INT32, std::vector<int64_t>(tokens.size(), 1));
  w.set_string_array("tokenizer.ggml.merges", {});
  Synthetic keep;
  auto tok = load_synthetic(w, keep);
  EXPECT_EQ(tok->decode(tok->encode("a\xFF" "b", false, false)), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(tok->decode(tok->encode("\xFF\xFF", false, false)), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok->decode(tok->encode("a\x1D" "b", false, false)), "ab");
  EXPECT_EQ(tok->decode(tok->encode("a\x80" "b", false, false)), "a\x80" "b");  // present: the byte itself
}

TEST(Tokenizer, SmolLM2InvalidBytesAreNeverDropped) {
  const std::string path = model_path(kSmolLM);
  EDGELLM_REQUIRE_FILE(path);
  auto l = load(path);
  // 0xFF has no token in SmolLM2; 0x80 and 0xE2 do.
  EXPECT_EQ(l.tok->decode(l.tok->encode("a\xFF" "b\x80" "c\xE2", false, false)), "a\xEF\xBF\xBD" "b\x80" "c\xE2");
}

}  // namespace
}  // namespace edgellm::tokenizer
