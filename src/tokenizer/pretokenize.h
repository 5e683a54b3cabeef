#pragma once
// Pre-tokenizers of byte-level BPE models: the regex splits named by tokenizer.ggml.pre,
// written by hand over code points (std::regex has no \p{L} and is slow).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm::tokenizer {

enum class PreTokenizer {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kSmolLM,  // every \p{N} on its own, then kGpt2 on the text between digits
  kLlama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
            //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // kLlama3 with \p{N} (single numbers) instead of \p{N}{1,3}
};

// Maps a tokenizer.ggml.pre name to its pre-tokenizer; throws ModelFormatError if unknown.
PreTokenizer pre_tokenizer_from_name(const std::string& name);

struct Span {
  uint32_t offset;
  uint32_t len;
};

// Splits `text` into pre-tokens (byte spans that tile the text in order).
// Invalid UTF-8: every byte that is not part of a well-formed sequence is a pre-token of its
// own, and the regex runs separately on the well-formed stretches between such bytes (so a
// bad byte behaves like the end of the text for look-aheads). This keeps encoding total and
// deterministic and lets decode() reproduce the exact input bytes.
std::vector<Span> pretokenize(PreTokenizer kind, std::string_view text);

}  // namespace edgellm::tokenizer
