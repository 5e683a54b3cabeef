#include "model/config.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include "ops/ops.h"

namespace edgellm::model {
namespace {

// The per-family part: which blocks a family uses. Hyper-parameters common to all families
// are read in config_from_gguf.
struct ArchSpec {
  const char* name;
  std::function<void(const io::GgufFile&, ModelConfig&)> describe;
};

std::string key(const ModelConfig& c, const char* suffix) { return c.arch + "." + suffix; }

// attention.sliding_window, 0 when absent; a window must be positive.
int32_t window(const io::GgufFile& f, const ModelConfig& c) {
  const std::string k = key(c, "attention.sliding_window");
  const auto v = f.get_int(k);
  if (!v || *v == 0) return 0;
  if (*v < 0 || *v > (1 << 24))
    throw ModelFormatError(f.path() + ": metadata '" + k + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int32_t>(*v);
}

// attention.sliding_window_pattern: a period n (layer il slides unless il % n == n - 1, llama.cpp's
// reading) or one flag per layer; `period` when absent.
void swa_pattern(const io::GgufFile& f, ModelConfig& c, int64_t period) {
  const std::string k = key(c, "attention.sliding_window_pattern");
  const io::Value* v = f.find(k);
  if (v && v->is_array()) {
    if (v->elem_type != io::ValueType::BOOL || v->ints.size() != static_cast<size_t>(c.n_layer))
      throw ModelFormatError(f.path() + ": metadata '" + k + "' must be an integer or one BOOL per layer");
    for (int32_t il = 0; il < c.n_layer; ++il) c.layer_swa[il] = v->ints[il] != 0;
    return;
  }
  if (v) period = f.require_int(k);
  if (period < 0 || period > c.n_layer + 1)
    throw ModelFormatError(f.path() + ": metadata '" + k + "' = " + std::to_string(period) + " is out of range");
  for (int32_t il = 0; il < c.n_layer; ++il) c.layer_swa[il] = period == 0 || il % period < period - 1;
}

const std::vector<ArchSpec>& arch_specs() {
  static const std::vector<ArchSpec> specs = {
      {"llama",
       [](const io::GgufFile& f, ModelConfig& c) {
         // Mistral's files are llama-arch; where the file names a sliding window (Mistral 7B
         // v0.1: 4096), every layer uses it, as the model was trained.
         if (auto w = window(f, c)) {
           c.sliding_window = w;
           c.layer_swa.assign(c.n_layer, true);
         }
       }},
      {"qwen2",
       [](const io::GgufFile&, ModelConfig& c) {
         c.qkv_bias = true;
         c.rope_neox = true;
       }},
      {"qwen3",
       [](const io::GgufFile&, ModelConfig& c) {
         c.rope_neox = true;
         c.qk_norm = true;  // RMSNorm per head on q and k before RoPE; no QKV bias (unlike Qwen2)
       }},
      {"phi3",
       [](const io::GgufFile& f, ModelConfig& c) {
         c.rope_neox = true;
         // Fused projections as llama.cpp's converter writes them (separate ones load too).
         c.fused_qkv = f.find_tensor("blk.0.attn_qkv.weight") != nullptr;
         c.fused_gate_up = f.find_tensor("blk.0.ffn_gate.weight") == nullptr;
         // LongRoPE factors are read with the other RoPE scaling. The file's sliding window is
         // not applied, as llama.cpp does not (converted Phi-3 files carry unreliable values).
       }},
      {"minicpm",
       [](const io::GgufFile& f, ModelConfig& c) {
         // The llama block with three scales; when a file lacks them, MiniCPM-2B's values
         // (scale_emb 12, scale_depth 1.4, dim_model_base 256), as llama.cpp assumes.
         auto scale = [&](const char* suffix, double fallback) {
           const double v = f.get_float(key(c, suffix)).value_or(fallback);
           if (!(v > 0 && std::isfinite(v)))
             throw ModelFormatError(f.path() + ": metadata '" + key(c, suffix) + "' must be a positive number");
           return static_cast<float>(v);
         };
         c.embd_scale = scale("embedding_scale", 12.0);
         c.residual_scale = scale("residual_scale", 1.4 / std::sqrt(static_cast<double>(c.n_layer)));
         c.logit_scale = scale("logit_scale", c.n_embd / 256.0);
       }},
      {"gemma2",
       [](const io::GgufFile& f, ModelConfig& c) {
         c.rope_neox = true;
         c.mlp = MlpKind::GeGLU;
         c.post_attn_norm = true;
         c.post_ffn_norm = true;
         c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
         // Sliding window (4096 unless named) on every other layer, starting with the first.
         c.sliding_window = window(f, c);
         if (c.sliding_window == 0) c.sliding_window = 4096;
         swa_pattern(f, c, 2);
         if (auto b = f.get_float(key(c, "rope.freq_base_swa"))) c.rope_base_local = static_cast<float>(*b);
         // Soft-capping is always on in Gemma 2; these are its values when the file names none.
         c.attn_softcap = static_cast<float>(f.get_float(key(c, "attn_logit_softcapping")).value_or(50.0));
         c.final_softcap = static_cast<float>(f.get_float(key(c, "final_logit_softcapping")).value_or(30.0));
         if (c.attn_softcap < 0 || c.final_softcap < 0)
           throw ModelFormatError(f.path() + ": gemma2 soft-capping values must not be negative");
         // q is scaled by query_pre_attn_scalar^-1/2, which llama.cpp's converter does not store:
         // head_dim for 2B/9B, d_model / n_head for 27B (46 layers), as llama.cpp decides.
         // attention.scale, where present, wins (read after this).
         const float qpas = c.n_layer == 46 ? static_cast<float>(c.n_embd / c.n_head) : static_cast<float>(c.head_dim);
         c.attn_scale = 1.0f / std::sqrt(qpas);
       }},
      {"gemma3",
       [](const io::GgufFile& f, ModelConfig& c) {
         c.rope_neox = true;
         c.mlp = MlpKind::GeGLU;
         c.qk_norm = true;
         c.post_attn_norm = true;
         c.post_ffn_norm = true;
         c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
         // Gemma 3 interleaves 5 sliding-window layers with 1 global layer; local layers use
         // RoPE base 10k, global ones the metadata base.
         c.sliding_window = static_cast<int32_t>(f.get_int(key(c, "attention.sliding_window")).value_or(512));
         c.rope_base_local = 10000.0f;
         for (int32_t il = 0; il < c.n_layer; ++il) c.layer_swa[il] = (il % 6) < 5;
         if (auto s = f.get_float(key(c, "final_logit_softcapping"))) c.final_softcap = static_cast<float>(*s);
         if (auto s = f.get_float(key(c, "attn_logit_softcapping"))) c.attn_softcap = static_cast<float>(*s);
       }},
  };
  return specs;
}

int32_t positive(const io::GgufFile& f, const std::string& k, int64_t v, int64_t max) {
  if (v <= 0 || v > max)
    throw ModelFormatError(f.path() + ": metadata '" + k + "' = " + std::to_string(v) +
                           " is out of range (1.." + std::to_string(max) + ")");
  return static_cast<int32_t>(v);
}

// A per-pair factor tensor [n_rot/2] of positive finite values (F32/F16/BF16).
std::vector<float> rope_factor_tensor(const io::GgufFile& f, const ModelConfig& c, const char* name) {
  const io::TensorInfo& t = f.require_tensor(name, {c.n_rot / 2});
  if (t.type != io::TensorType::F32 && t.type != io::TensorType::F16 && t.type != io::TensorType::BF16)
    throw ModelFormatError(f.path() + ": tensor '" + name + "' must be F32, F16 or BF16");
  std::vector<float> v(static_cast<size_t>(c.n_rot / 2));
  ops::dequantize_row(t.type, t.data, v.data(), static_cast<int64_t>(v.size()));
  for (float x : v)
    if (!(x > 0 && std::isfinite(x)))
      throw ModelFormatError(f.path() + ": tensor '" + name + "' holds a factor that is not a positive number");
  return v;
}

// Llama 3.1's frequency divisors from its rope_scaling parameters (what llama.cpp's converter
// stores as the rope_freqs tensor): high frequencies kept, low ones divided by `factor`, a
// smooth blend between the two wavelengths.
std::vector<float> llama3_factors(const ModelConfig& c, double factor, double low, double high, double orig_ctx) {
  std::vector<float> out(static_cast<size_t>(c.n_rot / 2));
  for (size_t i = 0; i < out.size(); ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_base), -2.0 * static_cast<double>(i) / c.n_rot);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < orig_ctx / high) {
      out[i] = 1.0f;
    } else if (wavelen > orig_ctx / low) {
      out[i] = static_cast<float>(factor);
    } else {
      const double smooth = (orig_ctx / wavelen - low) / (high - low);
      out[i] = static_cast<float>(1.0 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

// rope.scaling.*: linear (a position scale), llama3 (frequency divisors), none; the rope_freqs
// tensor wherever present (llama.cpp applies it to any family). Others (yarn, ...) are refused
// rather than run wrong.
void read_rope_scaling(const io::GgufFile& f, ModelConfig& c) {
  const std::string type_key = key(c, "rope.scaling.type");
  const auto type = f.get_string(type_key);
  auto num = [&](const char* suffix, std::optional<double> fallback) {
    const std::string k = key(c, suffix);
    const auto v = f.get_float(k);
    if (!v && !fallback) throw ModelFormatError(f.path() + ": rope scaling needs metadata '" + k + "'");
    const double x = v ? *v : *fallback;
    if (!(x > 0 && std::isfinite(x)))
      throw ModelFormatError(f.path() + ": metadata '" + k + "' must be a positive number");
    return x;
  };
  if (auto s = f.get_float(key(c, "rope.scaling.attn_factor"))) {
    if (!(*s > 0 && std::isfinite(*s))) throw ModelFormatError(f.path() + ": rope.scaling.attn_factor must be positive");
    c.rope_attn_factor = static_cast<float>(*s);
  }
  if (f.find_tensor("rope_freqs.weight")) c.rope_factors = rope_factor_tensor(f, c, "rope_freqs.weight");
  const bool longrope = type && *type == "longrope";
  if (longrope || f.find_tensor("rope_factors_long.weight") || f.find_tensor("rope_factors_short.weight")) {
    c.rope_factors = rope_factor_tensor(f, c, "rope_factors_short.weight");
    c.rope_factors_long = rope_factor_tensor(f, c, "rope_factors_long.weight");
    const std::string k = key(c, "rope.scaling.original_context_length");
    c.rope_ctx_orig = f.has(k) ? positive(f, k, f.require_int(k), 1 << 24) : c.n_ctx_train;
  }
  // Without a type llama.cpp reads a factor as linear scaling.
  if (!type || *type == "linear") {
    if (f.has(key(c, "rope.scaling.factor"))) c.rope_freq_scale = static_cast<float>(1.0 / num("rope.scaling.factor", 1.0));
  } else if (*type == "llama3") {
    if (c.rope_factors.empty()) {
      const double low = num("rope.scaling.low_freq_factor", 1.0), high = num("rope.scaling.high_freq_factor", 4.0);
      if (!(high > low)) throw ModelFormatError(f.path() + ": rope.scaling.high_freq_factor must exceed low_freq_factor");
      c.rope_factors = llama3_factors(c, num("rope.scaling.factor", std::nullopt), low, high,
                                      num("rope.scaling.original_context_length", std::nullopt));
    }
  } else if (*type != "none" && !longrope) {
    throw ModelFormatError(f.path() + ": metadata '" + type_key + "' = '" + *type +
                           "' is not supported (supported: none, linear, llama3, longrope)");
  }
}

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& s : arch_specs()) out.emplace_back(s.name);
  return out;
}

ModelConfig config_from_gguf(const io::GgufFile& f) {
  ModelConfig c;
  c.arch = f.require_string("general.architecture");
  c.name = f.get_string("general.name").value_or(c.arch);
  const ArchSpec* spec = nullptr;
  for (const auto& s : arch_specs())
    if (c.arch == s.name) spec = &s;
  if (!spec) {
    std::string list;
    for (const auto& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
    throw ModelFormatError(f.path() + ": architecture '" + c.arch +
                           "' is not supported (supported: " + list + ")");
  }
  auto req = [&](const char* suffix, int64_t max) {
    const std::string k = key(c, suffix);
    return positive(f, k, f.require_int(k), max);
  };
  c.n_layer = req("block_count", 4096);
  c.n_embd = req("embedding_length", 1 << 20);
  c.n_head = req("attention.head_count", 4096);
  c.n_ff = req("feed_forward_length", 1 << 22);
  c.n_ctx_train = req("context_length", 1 << 24);
  const std::string kv_key = key(c, "attention.head_count_kv");
  c.n_head_kv = f.has(kv_key) ? positive(f, kv_key, f.require_int(kv_key), 4096) : c.n_head;
  if (c.n_head % c.n_head_kv != 0)
    throw ModelFormatError(f.path() + ": head_count " + std::to_string(c.n_head) +
                           " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
  const std::string hd_key = key(c, "attention.key_length");
  if (f.has(hd_key)) {
    c.head_dim = positive(f, hd_key, f.require_int(hd_key), 1 << 16);
  } else {
    if (c.n_embd % c.n_head != 0)
      throw ModelFormatError(f.path() + ": embedding_length is not a multiple of head_count");
    c.head_dim = c.n_embd / c.n_head;
  }
  const std::string vl_key = key(c, "attention.value_length");
  if (f.has(vl_key) && f.require_int(vl_key) != c.head_dim)
    throw ModelFormatError(f.path() + ": value_length different from key_length is not supported");
  c.norm_eps = static_cast<float>(f.get_float(key(c, "attention.layer_norm_rms_epsilon")).value_or(1e-5));
  if (!(c.norm_eps > 0 && c.norm_eps < 1))
    throw ModelFormatError(f.path() + ": layer_norm_rms_epsilon out of range");
  c.rope_base = static_cast<float>(f.get_float(key(c, "rope.freq_base")).value_or(10000.0));
  c.n_rot = static_cast<int32_t>(f.get_int(key(c, "rope.dimension_count")).value_or(c.head_dim));
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    throw ModelFormatError(f.path() + ": rope.dimension_count " + std::to_string(c.n_rot) +
                           " must be even and at most the head size " + std::to_string(c.head_dim));
  read_rope_scaling(f, c);
  c.layer_swa.assign(c.n_layer, false);
  spec->describe(f, c);
  if (auto s = f.get_float(key(c, "attention.scale"))) c.attn_scale = static_cast<float>(*s);
  if (c.attn_scale == 0.0f) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  // Vocabulary size: metadata if present, else the token list (the embedding shape is checked
  // against it when tensors load).
  if (auto v = f.get_int(key(c, "vocab_size"))) {
    c.n_vocab = positive(f, key(c, "vocab_size"), *v, 1 << 24);
  } else if (auto* toks = f.get_string_array("tokenizer.ggml.tokens")) {
    c.n_vocab = static_cast<int32_t>(toks->size());
  } else if (auto* t = f.find_tensor("token_embd.weight"); t && t->ne.size() == 2) {
    c.n_vocab = static_cast<int32_t>(t->ne[1]);
  } else {
    throw ModelFormatError(f.path() + ": cannot determine the vocabulary size");
  }
  return c;
}

}  // namespace edgellm::model
