// libFuzzer target for tokenizer encode/decode with real vocabularies: GPT-2's byte-level BPE,
// Llama's SentencePiece, and the regex pre-tokenizers (DeepSeek LLM, Falcon, StarCoder) and
// WordPiece (BERT), read from the conformance GGUFs at start-up (fuzz_util.h vocab_dir()).
// Input: one flag byte (vocabulary: bits 0, 4 and 5; BOS, special-token parsing, plain spans)
// then the text. Invariants: ids in range; byte-level BPE with all 256 bytes decodes valid UTF-8
// text back to the same bytes; streaming decode equals whole decode and is valid UTF-8; random
// ids decode.
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

using namespace edgellm;

namespace {

struct Vocab {
  std::unique_ptr<io::GgufFile> file;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  bool byte_level = false;  // every byte has a token: valid UTF-8 round-trips
  bool space_prefix = false;  // whole decode drops a leading space a stream keeps
};
Vocab g_vocab[6];

Vocab load(const std::string& name, bool byte_level, bool space_prefix = false) {
  Vocab v;
  const std::string path = fuzz::vocab_dir() + "/" + name;
  try {
    v.file = io::GgufFile::open(path);
    v.tok = tokenizer::Tokenizer::from_gguf(*v.file);
  } catch (const Error& e) {
    std::fprintf(stderr, "tokenizer_fuzz: cannot load %s (%s); set EDGELLM_FUZZ_VOCAB_DIR\n", path.c_str(), e.what());
    std::exit(2);
  }
  v.byte_level = byte_level;
  v.space_prefix = space_prefix;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_vocab[0] = load("ggml-vocab-gpt-2.gguf", true);
  g_vocab[1] = load("ggml-vocab-llama-spm.gguf", false, true);
  g_vocab[2] = load("ggml-vocab-deepseek-llm.gguf", true);
  g_vocab[3] = load("ggml-vocab-bert-bge.gguf", false, true);
  g_vocab[4] = load("ggml-vocab-falcon.gguf", false);  // lacks 0x0B and other bytes
  g_vocab[5] = load("ggml-vocab-starcoder.gguf", false);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const Vocab& v = g_vocab[((flags & 1) | ((flags >> 3) & 6)) % 6];
  const tokenizer::Tokenizer& tok = *v.tok;
  const bool add_bos = flags & 2, parse_special = flags & 4;
  fuzz::Rng rng(text);

  // Plain spans (user text inside a template) at random places.
  std::vector<tokenizer::Tokenizer::TextRange> plain;
  if ((flags & 8) && !text.empty()) {
    size_t at = 0;
    while (at < text.size()) {
      const size_t b = at + rng.below(text.size() - at + 1);
      const size_t e = b + rng.below(text.size() - b + 1);
      if (e > b) plain.push_back({b, e});
      at = e + 1;
    }
  }
  std::vector<int32_t> ids = tok.encode(text, add_bos, parse_special, plain);
  for (int32_t id : ids) fuzz::check(id >= 0 && id < tok.n_vocab(), "tokenizer_fuzz", "token id in range");

  const std::string whole = tok.decode(ids);
  if (v.byte_level && !add_bos && fuzz::valid_utf8(text))
    fuzz::check(whole == text, "tokenizer_fuzz", "byte-level BPE decodes valid UTF-8 back to the same text");

  // Streaming: the pieces returned one token at a time add up to the skip-special decode.
  const std::string skipped = tok.decode(ids, /*skip_special=*/true);
  tokenizer::StreamDecoder sd(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += sd.push(id);
  streamed += sd.flush();
  // (SentencePiece's and WordPiece's whole decode drops the space in front of the first word;
  // a stream, which continues a prompt, keeps it.)
  if (fuzz::valid_utf8(skipped))
    fuzz::check(streamed == skipped || (v.space_prefix && streamed == " " + skipped), "tokenizer_fuzz",
                "streaming decode equals whole decode");
  fuzz::check(fuzz::valid_utf8(streamed), "tokenizer_fuzz", "streamed text is valid UTF-8");

  // Arbitrary ids (a model can sample any) decode without failing, to valid UTF-8 when streamed.
  std::vector<int32_t> any;
  for (size_t i = 0; i + 1 < text.size() && any.size() < 32; i += 2)
    any.push_back(static_cast<int32_t>((static_cast<uint8_t>(text[i]) << 8 | static_cast<uint8_t>(text[i + 1])) %
                                       tok.n_vocab()));
  tokenizer::StreamDecoder sd2(tok, rng.below(2) == 0);
  std::string streamed2;
  for (int32_t id : any) {
    (void)tok.token_bytes(id);
    (void)tok.token_text(id);
    streamed2 += sd2.push(id);
  }
  streamed2 += sd2.flush();
  fuzz::check(fuzz::valid_utf8(streamed2), "tokenizer_fuzz", "streamed text of arbitrary ids is valid UTF-8");
  (void)tok.decode(any, rng.below(2) == 0);
  return 0;
}
