#include "asr/convert.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "asr/ct2_model.h"
#include "io/gguf_writer.h"
#include "ops/fp16.h"
#include "util/error.h"

namespace edgellm::asr {
namespace {

using io::TensorType;

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ModelFormatError("cannot open " + path + " (a CTranslate2 Whisper folder holds model.bin, "
                                 "config.json, tokenizer.json and vocabulary.txt)");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw ModelFormatError(path + ": " + e.what());
  }
}

std::vector<int64_t> int_list(const nlohmann::json& j, const std::string& key, const std::string& path) {
  std::vector<int64_t> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) throw ModelFormatError(path + ": '" + key + "' is not a list");
  for (const auto& x : j[key]) {
    if (x.is_number_integer()) out.push_back(x.get<int64_t>());
    else if (x.is_array()) for (const auto& y : x) out.push_back(y.get<int64_t>());  // alignment_heads pairs
    else throw ModelFormatError(path + ": '" + key + "' holds a non-integer");
  }
  return out;
}

float element(const Ct2Variable& v, int64_t i) {
  const uint8_t* p = v.bytes.data();
  switch (v.type) {
    case Ct2Type::F32: { float x; std::memcpy(&x, p + 4 * i, 4); return x; }
    case Ct2Type::F16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return ops::f16_to_f32(h); }
    case Ct2Type::BF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); return ops::bf16_to_f32(h); }
    default:
      throw ModelFormatError("CTranslate2 variable '" + v.name +
                             "' is integer-quantized; convert the float16 or float32 model instead");
  }
}

// The variable's values in `to` (F32 or F16), in its own row-major order.
std::vector<uint8_t> encode(const Ct2Variable& v, TensorType to) {
  const int64_t n = v.n_elements();
  if (to == TensorType::F16 && v.type == Ct2Type::F16) return v.bytes;
  if (to == TensorType::F32 && v.type == Ct2Type::F32) return v.bytes;
  std::vector<uint8_t> out(n * (to == TensorType::F16 ? 2 : 4));
  for (int64_t i = 0; i < n; ++i) {
    const float x = element(v, i);
    if (to == TensorType::F16) {
      const uint16_t h = ops::f32_to_f16(x);
      std::memcpy(out.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(out.data() + 4 * i, &x, 4);
    }
  }
  return out;
}

std::string gguf_name(const std::string& ct2_name) {
  std::string s = ct2_name;
  for (char& c : s) if (c == '/') c = '.';
  return s;
}

}  // namespace

void convert_ct2_whisper(const std::string& dir, const std::string& out_path, TensorType type) {
  if (type != TensorType::F16 && type != TensorType::F32)
    throw InvalidArgument("convert writes F16 or F32; quantize the result with `edgellm quantize`");
  const Ct2Model m = Ct2Model::read(dir + "/model.bin");
  if (m.spec != "WhisperSpec") throw ModelFormatError(dir + "/model.bin holds a " + m.spec + ", not Whisper");
  const std::string cfg_path = dir + "/config.json";
  const nlohmann::json cfg = read_json(cfg_path);

  const Ct2Variable& emb = m.at("decoder/embeddings/weight");
  const Ct2Variable& conv1 = m.at("encoder/conv1/weight");
  const Ct2Variable& enc_pos = m.at("encoder/position_encodings/encodings");
  const Ct2Variable& dec_pos = m.at("decoder/position_encodings/encodings");
  if (emb.dims.size() != 2 || conv1.dims.size() != 3 || enc_pos.dims.size() != 2 || dec_pos.dims.size() != 2)
    throw ModelFormatError(dir + "/model.bin: unexpected Whisper tensor shapes");
  const int64_t n_vocab = emb.dims[0], d = emb.dims[1];
  auto count_layers = [&](const std::string& side) {
    int64_t n = 0;
    while (m.has(side + "/layer_" + std::to_string(n) + "/self_attention/linear_0/weight")) ++n;
    if (n == 0) throw ModelFormatError(dir + "/model.bin: no " + side + " layers");
    return n;
  };

  io::GgufWriter w;
  w.set_string("general.architecture", "whisper");
  std::string name = dir;
  while (!name.empty() && name.back() == '/') name.pop_back();
  w.set_string("general.name", name.substr(name.find_last_of('/') + 1));
  w.set_u32("general.file_type", type == TensorType::F16 ? 1 : 0);
  w.set_u32("whisper.encoder.block_count", static_cast<uint32_t>(count_layers("encoder")));
  w.set_u32("whisper.decoder.block_count", static_cast<uint32_t>(count_layers("decoder")));
  w.set_u32("whisper.embedding_length", static_cast<uint32_t>(d));
  w.set_u32("whisper.feed_forward_length",
            static_cast<uint32_t>(m.at("encoder/layer_0/ffn/linear_0/weight").dims[0]));
  w.set_u32("whisper.encoder.attention.head_count", static_cast<uint32_t>(m.scalar_int("encoder/num_heads")));
  w.set_u32("whisper.decoder.attention.head_count", static_cast<uint32_t>(m.scalar_int("decoder/num_heads")));
  w.set_u32("whisper.n_mels", static_cast<uint32_t>(conv1.dims[1]));
  w.set_u32("whisper.audio_context_length", static_cast<uint32_t>(enc_pos.dims[0]));
  w.set_u32("whisper.text_context_length", static_cast<uint32_t>(dec_pos.dims[0]));
  w.set_u32("whisper.vocab_size", static_cast<uint32_t>(n_vocab));
  // OpenAI's rule (and CTranslate2's): the multilingual vocabulary has 51865 tokens or more.
  w.set_bool("whisper.multilingual", n_vocab >= 51865);
  for (const char* key : {"lang_ids", "suppress_ids", "suppress_ids_begin", "alignment_heads"}) {
    const auto v = int_list(cfg, key, cfg_path);
    if (!v.empty()) w.set_int_array(std::string("whisper.") + key, io::ValueType::INT32, v);
  }

  // Tokenizer: the vocabulary in id order (vocabulary.txt, one token a line), BPE merges.
  const std::string vocab_path = dir + "/vocabulary.txt";
  const std::string vocab_text = read_text(vocab_path);
  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < vocab_text.size()) {
    size_t nl = vocab_text.find('\n', start);
    if (nl == std::string::npos) nl = vocab_text.size();
    tokens.push_back(vocab_text.substr(start, nl - start));
    start = nl + 1;
  }
  if (static_cast<int64_t>(tokens.size()) != n_vocab)
    throw ModelFormatError(vocab_path + " has " + std::to_string(tokens.size()) + " tokens, the model " +
                           std::to_string(n_vocab));
  int64_t eot = -1;
  std::vector<int64_t> token_type(tokens.size(), 1);  // 1 normal, 3 control (GGUF's numbering)
  for (size_t i = 0; i < tokens.size(); ++i) {
    // A vocabulary line may be empty (the multilingual vocabulary has one unused id).
    if (tokens[i].empty()) tokens[i] = "<|unused" + std::to_string(i) + "|>", token_type[i] = 3;
    const std::string& t = tokens[i];
    if (t.size() > 4 && t.compare(0, 2, "<|") == 0 && t.compare(t.size() - 2, 2, "|>") == 0) token_type[i] = 3;
    if (t == "<|endoftext|>") eot = static_cast<int64_t>(i);
  }
  if (eot < 0) throw ModelFormatError(vocab_path + " has no <|endoftext|>");
  const std::string tok_path = dir + "/tokenizer.json";
  const nlohmann::json tok = read_json(tok_path);
  std::vector<std::string> merges;
  try {
    for (const auto& x : tok.at("model").at("merges")) {
      if (x.is_string()) merges.push_back(x.get<std::string>());
      else merges.push_back(x.at(0).get<std::string>() + " " + x.at(1).get<std::string>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw ModelFormatError(tok_path + ": no BPE merges (" + e.what() + ")");
  }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_int_array("tokenizer.ggml.token_type", io::ValueType::INT32, token_type);
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eot));
  w.set_bool("tokenizer.ggml.add_bos_token", false);

  // Tensors: every non-scalar variable under its name with '/' -> '.', dimensions reversed
  // (ggml order); the tied output projection (an alias of the embedding) is not repeated.
  for (const auto& [vname, v] : m.variables) {
    if (v.dims.empty()) continue;  // scalars (num_heads, flags) are metadata above
    std::vector<int64_t> ne(v.dims.rbegin(), v.dims.rend());
    const TensorType to = v.dims.size() >= 2 ? type : TensorType::F32;
    w.add_tensor(gguf_name(vname), to, ne, encode(v, to));
  }
  w.write(out_path);
}

}  // namespace edgellm::asr
