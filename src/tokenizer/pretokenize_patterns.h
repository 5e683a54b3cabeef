#pragma once
// Split regexes of HF tokenizer.json pre-tokenizers that have no hand-written matcher, as the
// models' tokenizer.json files write them (Oniguruma syntax, in regex.h's subset). Non-ASCII
// characters are escaped so no editor can normalize them (DeepSeek's class lists U+1F7D and
// U+2126, which NFC would turn into other characters).
namespace edgellm::tokenizer::patterns {

// HF pre_tokenizers.Digits(individual_digits=true / false).
inline constexpr const char* kDigit = "\\p{N}";
inline constexpr const char* kDigits = "\\p{N}+";
// HF pre_tokenizers.Punctuation(behavior="contiguous"): ASCII punctuation or \p{P}, in runs.
inline constexpr const char* kPunctuation = "[\\p{P}!-/:-@\\[-`{-~]+";

inline constexpr const char* kNewline = "[\\r\\n]";
// CJK ideographs, other scripts from U+0800 and Hangul, as DeepSeek writes them.
inline constexpr const char* kDeepSeekCjk = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";

// deepseek-llm: an optional space and a run of cased letters (\p{Lu}, \p{Ll}, \p{Lt} as of
// Unicode 11-ish, written out as ranges in the tokenizer), then ASCII/fullwidth punctuation.
inline constexpr const char* kDeepSeekLlmLetters =
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-"
    "\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-"
    "\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5"
    "\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00"
    "-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-"
    "\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-"
    "\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-"
    "\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149"
    "\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
    "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13"
    "-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3"
    "\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF"
    "\U0001E900-\U0001E943]+";
inline constexpr const char* kDeepSeekLlmPunct =
    "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+";
inline constexpr const char* kTrailingSpace = "\\s+$";

// deepseek-coder
inline constexpr const char* kSpaceLetters = "\\s?\\p{L}+";
inline constexpr const char* kSpacePunct = "\\s?\\p{P}+";

// bloom, poro-chat, gpt3-finnish, viking: anything but whitespace and sentence punctuation.
inline constexpr const char* kBloom =
    " ?[^(\\s|[.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C])]+";

// tekken (Mistral NeMo): words split at lower-to-upper case changes.
inline constexpr const char* kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

}  // namespace edgellm::tokenizer::patterns
