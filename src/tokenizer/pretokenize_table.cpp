// tokenizer.ggml.pre names -> pre-tokenizer step sequences (the HF tokenizer.json pipelines).
#include <memory>

#include "tokenizer/pretokenize.h"
#include "tokenizer/pretokenize_patterns.h"
#include "util/error.h"

namespace edgellm::tokenizer {
namespace {

struct Entry {
  std::vector<std::string> names;
  std::unique_ptr<PreTokenizer> pre;
};

class Table {
 public:
  Table() {
    const PreStep byte_level{PreStep::kByteLevel};
    const PreStep gpt2{PreStep::kBuiltin, BuiltinPattern::kGpt2};  // ByteLevel(use_regex=true)
    // ByteLevel(use_regex=true): GPT-2's split, then the byte alphabet.
    add({"gpt-2", "default", "mpt", "olmo", "jais", "phi-2", "roberta-bpe", "trillion"}, {gpt2, byte_level});
    // Digits(individual_digits=true) then ByteLevel(use_regex=true).
    add({"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "minerva"},
        {split(patterns::kDigit), gpt2, byte_level});
    add({"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"},
        {{PreStep::kBuiltin, BuiltinPattern::kLlama3}, byte_level}, /*ignore_merges=*/true);
    add({"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {{PreStep::kBuiltin, BuiltinPattern::kLlama3}, byte_level});
    add({"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez"},
        {{PreStep::kBuiltin, BuiltinPattern::kQwen2}, byte_level});
    add({"deepseek-llm"},
        {split(patterns::kNewline), split(patterns::kDeepSeekLlmLetters), split(patterns::kDeepSeekLlmPunct),
         split(patterns::kTrailingSpace), split(patterns::kDeepSeekCjk), split(patterns::kDigits), byte_level});
    add({"deepseek-coder"}, {split(patterns::kNewline), split(patterns::kSpaceLetters), split(patterns::kSpacePunct),
                             split(patterns::kDeepSeekCjk), split(patterns::kDigit), byte_level});
    // Punctuation(contiguous), ByteLevel(use_regex=true), Digits(individual_digits=false),
    // Split([0-9][0-9][0-9]): the last two see the byte alphabet, so a UTF-8 continuation byte
    // that maps to a Latin-1 digit-like character (0xB2 -> U+00B2) splits too, as in HF.
    add({"falcon"}, {split(patterns::kPunctuation), gpt2, byte_level, split(patterns::kDigits),
                     split("[0-9][0-9][0-9]")});
    add({"bloom", "poro-chat", "gpt3-finnish"}, {split(patterns::kBloom), byte_level});
    add({"viking"}, {split(patterns::kBloom), split(patterns::kDigit), byte_level});
    add({"tekken"}, {split(patterns::kTekken), byte_level}, /*ignore_merges=*/true);
  }

  const PreTokenizer* find(const std::string& name) const {
    for (const Entry& e : entries_)
      for (const std::string& n : e.names)
        if (n == name) return e.pre.get();
    return nullptr;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Entry& e : entries_) out.insert(out.end(), e.names.begin(), e.names.end());
    return out;
  }

 private:
  PreStep split(const char* pattern) {
    regexes_.push_back(std::make_unique<Regex>(pattern));
    return {PreStep::kRegex, BuiltinPattern::kGpt2, regexes_.back().get()};
  }
  void add(std::vector<std::string> names, std::vector<PreStep> steps, bool ignore_merges = false) {
    auto pre = std::make_unique<PreTokenizer>(names.front(), std::move(steps), ignore_merges);
    entries_.push_back({std::move(names), std::move(pre)});
  }

  std::vector<std::unique_ptr<Regex>> regexes_;
  std::vector<Entry> entries_;
};

const Table& table() {
  static const Table t;
  return t;
}

}  // namespace

const PreTokenizer& PreTokenizer::from_name(const std::string& name) {
  if (const PreTokenizer* p = table().find(name.empty() ? "default" : name)) return *p;
  std::string list;
  for (const std::string& n : pre_tokenizer_names()) list += (list.empty() ? "" : ", ") + n;
  throw ModelFormatError("unsupported tokenizer.ggml.pre '" + name + "' (supported: " + list + ")");
}

std::vector<std::string> pre_tokenizer_names() { return table().names(); }

}  // namespace edgellm::tokenizer
