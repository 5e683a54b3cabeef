#pragma once
// Pre-tokenizers of byte-level BPE models, named by tokenizer.ggml.pre: the step sequence of the
// model's HF tokenizer.json (Split regexes, Digits, Punctuation, ByteLevel), each step splitting
// every piece the previous steps produced. Tables: pretokenize_table.cpp (names -> steps) and
// pretokenize_patterns.h (the regexes).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pretokenize_builtin.h"
#include "tokenizer/regex.h"

namespace edgellm::tokenizer {

struct Span {
  uint32_t offset;
  uint32_t len;
};

struct PreStep {
  enum Kind : uint8_t {
    kBuiltin,    // a hand-written pattern (pretokenize_builtin.h), Split isolated
    kRegex,      // Split(regex, isolated): matches and the text between them become pieces
    kByteLevel,  // later steps see each byte as its GPT-2 alphabet character, as HF's do
  } kind;
  BuiltinPattern builtin = BuiltinPattern::kGpt2;
  const Regex* regex = nullptr;  // kRegex; owned by the table
};

class PreTokenizer {
 public:
  // The pre-tokenizer a tokenizer.ggml.pre name stands for; throws ModelFormatError if unknown.
  static const PreTokenizer& from_name(const std::string& name);

  PreTokenizer(std::string name, std::vector<PreStep> steps, bool ignore_merges)
      : name_(std::move(name)), steps_(std::move(steps)), ignore_merges_(ignore_merges) {}

  // Splits `text` into pre-tokens (byte spans that tile the text in order).
  // Invalid UTF-8: every byte that is not part of a well-formed sequence is a pre-token of its
  // own, and the steps run separately on the well-formed stretches between such bytes (so a
  // bad byte behaves like the end of the text for look-aheads). This keeps encoding total and
  // deterministic and lets decode() reproduce the exact input bytes.
  std::vector<Span> split(std::string_view text) const;

  // The model takes a whole pre-token from the vocabulary before merging (HF BPE ignore_merges).
  bool ignore_merges() const { return ignore_merges_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<PreStep> steps_;
  bool ignore_merges_;
};

// Names accepted by PreTokenizer::from_name, for error messages and tests.
std::vector<std::string> pre_tokenizer_names();

}  // namespace edgellm::tokenizer
