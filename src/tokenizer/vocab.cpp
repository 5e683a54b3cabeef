#include "tokenizer/vocab.h"

#include <algorithm>

#include "util/error.h"

namespace edgellm::tokenizer {

void SpecialMatcher::add(std::string_view text, int32_t id, bool control) {
  if (text.empty()) return;
  int32_t node = 0;
  for (char ch : text) {
    const auto b = static_cast<uint8_t>(ch);
    auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it != kids.end() && it->first == b) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes_.size());
      kids.insert(it, {b, child});
      nodes_.emplace_back();  // invalidates `kids`; not used below
      node = child;
    }
  }
  if (nodes_[node].token < 0) {  // first id wins, as in the text index
    nodes_[node].token = id;
    nodes_[node].control = control;
  }
}

size_t SpecialMatcher::match(std::string_view text, size_t pos, bool allow_control,
                             int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes_[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    const Node& n = nodes_[node];
    if (n.token >= 0 && (allow_control || !n.control)) {
      best = i + 1 - pos;
      *id = n.token;
    }
  }
  return best;
}

namespace {

int32_t optional_id(const io::GgufFile& f, std::string_view key, int32_t n) {
  auto v = f.get_int(key);
  if (!v) return -1;
  // Some converters write -1 or out-of-range ids for "none"; treat them as absent.
  if (*v < 0 || *v >= n) return -1;
  return static_cast<int32_t>(*v);
}

bool is_eog_text(const std::string& s) {
  static const char* const kNames[] = {"<|eot_id|>", "<|im_end|>",  "<|end|>",
                                       "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                       "<|end_of_text|>", "<EOT>", "<|return|>"};
  for (const char* name : kNames)
    if (s == name) return true;
  return false;
}

}  // namespace

Vocab Vocab::load(const io::GgufFile& f, bool spm) {
  Vocab v;
  const auto* tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty())
    throw ModelFormatError("missing or empty tokenizer.ggml.tokens in " + f.path());
  v.text = *tokens;
  const size_t n = v.text.size();
  if (n > static_cast<size_t>(INT32_MAX))
    throw ModelFormatError("vocabulary too large in " + f.path());

  if (auto types = f.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() != n)
      throw ModelFormatError("tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                             " entries but there are " + std::to_string(n) + " tokens in " +
                             f.path());
    v.type.assign(types->begin(), types->end());
  } else {
    v.type.assign(n, kTypeNormal);
  }
  if (auto scores = f.get_float_array("tokenizer.ggml.scores")) {
    if (scores->size() != n)
      throw ModelFormatError("tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                             " entries but there are " + std::to_string(n) + " tokens in " +
                             f.path());
    v.score.assign(scores->begin(), scores->end());
  } else if (spm) {
    throw ModelFormatError("SentencePiece vocabulary without tokenizer.ggml.scores in " + f.path());
  }

  v.index.reserve(n);
  for (size_t i = 0; i < n; ++i) v.index.emplace(v.text[i], static_cast<int32_t>(i));

  const auto ni = static_cast<int32_t>(n);
  v.bos = optional_id(f, "tokenizer.ggml.bos_token_id", ni);
  v.eos = optional_id(f, "tokenizer.ggml.eos_token_id", ni);
  v.unk = optional_id(f, "tokenizer.ggml.unknown_token_id", ni);
  v.eot = optional_id(f, "tokenizer.ggml.eot_token_id", ni);
  v.eom = optional_id(f, "tokenizer.ggml.eom_token_id", ni);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token").value_or(spm);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);

  v.eog.assign(n, 0);
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) v.eog[id] = 1;
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = v.type[i];
    if ((t == kTypeControl || t == kTypeUserDefined) && is_eog_text(v.text[i])) v.eog[i] = 1;
    // Control and unknown tokens are only recognised in text with parse_special; user-defined
    // tokens always are (SentencePiece / llama.cpp semantics).
    if (t == kTypeControl || t == kTypeUnknown)
      v.specials.add(v.text[i], static_cast<int32_t>(i), true);
    else if (t == kTypeUserDefined)
      v.specials.add(v.text[i], static_cast<int32_t>(i), false);
  }
  return v;
}

}  // namespace edgellm::tokenizer
