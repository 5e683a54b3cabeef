// BERT sentence encoders (Hugging Face folder: config.json with model_type "bert",
// model.safetensors, tokenizer.json or vocab.txt, sentence-transformers' 1_Pooling/config.json)
// -> GGUF in llama.cpp's "bert" layout: the same metadata keys and tensor names, so the file
// also loads in llama.cpp, and model/bert.h reads it.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/convert.h"
#include "cli/safetensors.h"
#include "io/gguf_writer.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// llama.cpp's token types and pooling types.
constexpr int64_t kTokNormal = 1, kTokUnknown = 2, kTokControl = 3;
constexpr uint32_t kPoolMean = 1, kPoolCls = 2;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error("cannot open " + p.string());
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw ModelFormatError(p.string() + " is not a JSON object");
  return j;
}

bool is_bert_folder(const std::string& in) {
  std::error_code ec;
  const fs::path d(in);
  if (!fs::is_directory(d, ec) || !fs::is_regular_file(d / "model.safetensors", ec) ||
      !fs::is_regular_file(d / "config.json", ec))
    return false;
  try {
    const json c = read_json(d / "config.json");
    return c.value("model_type", "") == "bert";
  } catch (const std::exception&) {
    return false;
  }
}

int64_t config_int(const json& c, const char* key, int64_t max) {
  if (!c.contains(key) || !c[key].is_number_integer() || c[key].get<int64_t>() <= 0 || c[key].get<int64_t>() > max)
    throw ModelFormatError(std::string("config.json: \"") + key + "\" is missing or out of range");
  return c[key].get<int64_t>();
}

// The vocabulary in id order: tokenizer.json's WordPiece vocab, else vocab.txt (one per line).
std::vector<std::string> read_vocab(const fs::path& dir, int64_t n_vocab, std::vector<std::string>& specials) {
  std::vector<std::string> vocab;
  if (fs::is_regular_file(dir / "tokenizer.json")) {
    const json t = read_json(dir / "tokenizer.json");
    if (!t.contains("model") || t["model"].value("type", "") != "WordPiece" || !t["model"].contains("vocab") ||
        !t["model"]["vocab"].is_object())
      throw ModelFormatError((dir / "tokenizer.json").string() + ": not a WordPiece tokenizer");
    const auto& v = t["model"]["vocab"];
    vocab.resize(v.size());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_number_integer()) throw ModelFormatError("tokenizer.json: bad id of '" + it.key() + "'");
      const int64_t id = it.value().get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || !vocab[id].empty())
        throw ModelFormatError("tokenizer.json: ids are not 0..n-1 (at '" + it.key() + "')");
      vocab[id] = it.key();
    }
    if (t.contains("added_tokens") && t["added_tokens"].is_array())
      for (const auto& a : t["added_tokens"])
        if (a.is_object() && a.value("special", false) && a.contains("content") && a["content"].is_string())
          specials.push_back(a["content"].get<std::string>());
  } else {
    std::ifstream in(dir / "vocab.txt");
    if (!in) throw ModelFormatError(dir.string() + ": neither tokenizer.json nor vocab.txt");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      vocab.push_back(line);
    }
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  }
  if (static_cast<int64_t>(vocab.size()) != n_vocab)
    throw ModelFormatError(dir.string() + ": the vocabulary has " + std::to_string(vocab.size()) +
                           " tokens but config.json says vocab_size " + std::to_string(n_vocab));
  return vocab;
}

// sentence-transformers' pooling; mean when the folder has no pooling module (its default).
uint32_t read_pooling(const fs::path& dir) {
  const fs::path p = dir / "1_Pooling" / "config.json";
  if (!fs::is_regular_file(p)) return kPoolMean;
  const json j = read_json(p);
  if (j.value("pooling_mode_mean_tokens", false)) return kPoolMean;
  if (j.value("pooling_mode_cls_token", false)) return kPoolCls;
  throw ModelFormatError(p.string() + ": only mean or CLS pooling is supported");
}

void convert_bert(const std::string& in, const ConvertOptions& o) {
  const fs::path dir(in);
  const json c = read_json(dir / "config.json");
  if (c.value("model_type", "") != "bert") throw ModelFormatError(in + ": config.json's model_type is not \"bert\"");
  if (c.value("position_embedding_type", "absolute") != "absolute")
    throw ModelFormatError(in + ": only absolute position embeddings are supported");
  if (c.value("hidden_act", "gelu") != "gelu")
    throw ModelFormatError(in + ": hidden_act \"" + c.value("hidden_act", "") + "\" is not supported (gelu is)");
  if (c.contains("is_decoder") && c["is_decoder"].is_boolean() && c["is_decoder"].get<bool>())
    throw ModelFormatError(in + ": a BERT decoder is not a sentence encoder");
  const int64_t d = config_int(c, "hidden_size", 1 << 16), n_layer = config_int(c, "num_hidden_layers", 1024),
                n_head = config_int(c, "num_attention_heads", 1024), ff = config_int(c, "intermediate_size", 1 << 20),
                n_ctx = config_int(c, "max_position_embeddings", 1 << 20), n_vocab = config_int(c, "vocab_size", 1 << 24),
                n_types = c.contains("type_vocab_size") ? config_int(c, "type_vocab_size", 64) : 2;
  if (d % n_head != 0) throw ModelFormatError(in + ": hidden_size is not a multiple of num_attention_heads");
  const double eps = c.value("layer_norm_eps", 1e-12);
  if (!(eps > 0 && eps < 1)) throw ModelFormatError(in + ": layer_norm_eps out of range");
  const std::string type = o.type.empty() ? "f16" : o.type;
  if (type != "f32" && type != "f16") throw InvalidArgument("--type must be f32 or f16 for a BERT model, not " + type);
  const io::TensorType mat_type = type == "f16" ? io::TensorType::F16 : io::TensorType::F32;

  std::vector<std::string> specials;
  const std::vector<std::string> vocab = read_vocab(dir, n_vocab, specials);
  const uint32_t pooling = read_pooling(dir);
  std::string name = o.name;
  if (name.empty()) {
    name = fs::absolute(dir).lexically_normal().filename().string();
    if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
    if (name.size() > 3 && name.ends_with("-hf")) name.resize(name.size() - 3);
  }

  io::GgufWriter w;
  w.set_string("general.architecture", "bert");
  w.set_string("general.name", name);
  w.set_u32("general.file_type", mat_type == io::TensorType::F16 ? 1 : 0);
  w.set_u32("bert.context_length", static_cast<uint32_t>(n_ctx));
  w.set_u32("bert.embedding_length", static_cast<uint32_t>(d));
  w.set_u32("bert.feed_forward_length", static_cast<uint32_t>(ff));
  w.set_u32("bert.block_count", static_cast<uint32_t>(n_layer));
  w.set_u32("bert.attention.head_count", static_cast<uint32_t>(n_head));
  w.set_f32("bert.attention.layer_norm_epsilon", static_cast<float>(eps));
  w.set_bool("bert.attention.causal", false);
  w.set_u32("bert.pooling_type", pooling);

  // llama.cpp's form of a WordPiece vocabulary: word-initial pieces carry U+2581, continuations
  // lose their "##", bracketed specials stay as they are.
  std::vector<std::string> tokens(vocab.size());
  std::vector<int64_t> types(vocab.size(), kTokNormal);
  for (size_t i = 0; i < vocab.size(); ++i) {
    const std::string& t = vocab[i];
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') tokens[i] = t;
    else if (t.starts_with("##")) tokens[i] = t.substr(2);
    else tokens[i] = "\xE2\x96\x81" + t;
    for (const auto& s : specials)
      if (t == s) types[i] = t == "[UNK]" ? kTokUnknown : kTokControl;
  }
  auto find = [&](const char* t) -> int64_t {
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == t) return static_cast<int64_t>(i);
    return -1;
  };
  w.set_string("tokenizer.ggml.model", "bert");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_int_array("tokenizer.ggml.token_type", io::ValueType::INT32, types);
  w.set_u32("tokenizer.ggml.token_type_count", static_cast<uint32_t>(n_types));
  const std::pair<const char*, const char*> ids[] = {{"tokenizer.ggml.unknown_token_id", "[UNK]"},
                                                     {"tokenizer.ggml.seperator_token_id", "[SEP]"},
                                                     {"tokenizer.ggml.padding_token_id", "[PAD]"},
                                                     {"tokenizer.ggml.cls_token_id", "[CLS]"},
                                                     {"tokenizer.ggml.mask_token_id", "[MASK]"}};
  for (const auto& [key, text] : ids) {
    const int64_t id = find(text);
    if (id >= 0) w.set_u32(key, static_cast<uint32_t>(id));
    else if (std::string(text) != "[MASK]" && std::string(text) != "[PAD]")
      throw ModelFormatError(in + ": the vocabulary has no " + text + " token");
  }

  SafetensorsFile st((dir / "model.safetensors").string());
  // Some checkpoints keep BertModel's "bert." prefix (BertForMaskedLM and the like).
  const std::string pre = st.has("embeddings.word_embeddings.weight") ? "" : "bert.";

  auto add = [&](const std::string& gguf, const std::string& hf, std::vector<int64_t> shape, bool matrix) {
    std::vector<float> v = st.read_f32(pre + hf, shape);
    std::vector<int64_t> ne(shape.rbegin(), shape.rend());  // ggml order: innermost first
    const io::TensorType t = matrix ? mat_type : io::TensorType::F32;
    std::vector<uint8_t> bytes;
    if (t == io::TensorType::F32) {
      bytes.resize(v.size() * 4);
      std::memcpy(bytes.data(), v.data(), bytes.size());
    } else {
      bytes.resize(v.size() * 2);
      ops::quantize_row(io::TensorType::F16, v.data(), bytes.data(), static_cast<int64_t>(v.size()));
    }
    if (!o.quiet) std::printf("%-32s %-5s <- %s\n", gguf.c_str(), std::string(io::type_name(t)).c_str(), (pre + hf).c_str());
    w.add_tensor(gguf, t, ne, std::move(bytes));
  };
  add("token_embd.weight", "embeddings.word_embeddings.weight", {n_vocab, d}, true);
  add("token_types.weight", "embeddings.token_type_embeddings.weight", {n_types, d}, true);
  add("position_embd.weight", "embeddings.position_embeddings.weight", {n_ctx, d}, true);
  add("token_embd_norm.weight", "embeddings.LayerNorm.weight", {d}, false);
  add("token_embd_norm.bias", "embeddings.LayerNorm.bias", {d}, false);
  for (int64_t il = 0; il < n_layer; ++il) {
    const std::string g = "blk." + std::to_string(il) + ".", h = "encoder.layer." + std::to_string(il) + ".";
    const std::pair<const char*, const char*> lin[] = {{"attn_q", "attention.self.query"},
                                                       {"attn_k", "attention.self.key"},
                                                       {"attn_v", "attention.self.value"},
                                                       {"attn_output", "attention.output.dense"}};
    for (const auto& [gn, hn] : lin) {
      add(g + gn + ".weight", h + hn + ".weight", {d, d}, true);
      add(g + gn + ".bias", h + hn + ".bias", {d}, false);
    }
    add(g + "attn_output_norm.weight", h + "attention.output.LayerNorm.weight", {d}, false);
    add(g + "attn_output_norm.bias", h + "attention.output.LayerNorm.bias", {d}, false);
    add(g + "ffn_up.weight", h + "intermediate.dense.weight", {ff, d}, true);
    add(g + "ffn_up.bias", h + "intermediate.dense.bias", {ff}, false);
    add(g + "ffn_down.weight", h + "output.dense.weight", {d, ff}, true);
    add(g + "ffn_down.bias", h + "output.dense.bias", {d}, false);
    add(g + "layer_output_norm.weight", h + "output.LayerNorm.weight", {d}, false);
    add(g + "layer_output_norm.bias", h + "output.LayerNorm.bias", {d}, false);
  }
  w.write(o.out);
  std::printf("wrote %s (bert, %s, %lld layers, %lld dims, %s pooling)\n", o.out.c_str(), type.c_str(),
              static_cast<long long>(n_layer), static_cast<long long>(d), pooling == kPoolMean ? "mean" : "CLS");
}

ConverterRegistrar reg({"bert",
                        "a Hugging Face BERT folder (config.json with model_type \"bert\", model.safetensors, "
                        "tokenizer.json or vocab.txt; 1_Pooling/config.json of sentence-transformers)",
                        is_bert_folder, convert_bert});

}  // namespace
}  // namespace edgellm::cli
