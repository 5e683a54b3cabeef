#pragma once
// The three most used split patterns, written by hand over code points: they run on every
// prompt of GPT-2-, Llama-3- and Qwen-style models, and are linear in the text by construction.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgellm::tokenizer {

enum class BuiltinPattern : uint8_t {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
            //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // kLlama3 with \p{N} (single numbers) instead of \p{N}{1,3}
};

// Length (in code points, >= 1) of the pattern's match at cps[i], with `end` (> i) acting as
// the end of the text. These patterns match at every position, so they tile any text.
size_t builtin_match(BuiltinPattern p, const std::vector<uint32_t>& cps, size_t i, size_t end);

}  // namespace edgellm::tokenizer
