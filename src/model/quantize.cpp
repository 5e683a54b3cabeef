#include "model/quantize.h"

#include <thread>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::model {
namespace {

using io::TensorType;

const std::vector<QuantTarget>& targets() {
  static const std::vector<QuantTarget> t = {
      {"F32", TensorType::F32, false, 0},     {"F16", TensorType::F16, false, 1},
      {"BF16", TensorType::BF16, false, 32},  {"Q8_0", TensorType::Q8_0, false, 7},
      {"Q4_0", TensorType::Q4_0, false, 2},   {"Q4_1", TensorType::Q4_1, false, 3},
      {"Q5_0", TensorType::Q5_0, false, 8},   {"Q5_1", TensorType::Q5_1, false, 9},
      {"Q4_K", TensorType::Q4_K, false, 14},  {"Q5_K", TensorType::Q5_K, false, 16},
      {"Q6_K", TensorType::Q6_K, false, 18},  {"Q4_K_M", TensorType::Q4_K, true, 15},
      {"Q5_K_M", TensorType::Q5_K, true, 17},
  };
  return t;
}

bool fits(TensorType t, int64_t n_in) { return n_in % io::traits(t).block_elems == 0; }

TensorType fallback(TensorType t) {
  switch (t) {
    case TensorType::Q4_K: return TensorType::Q5_0;
    case TensorType::Q5_K: return TensorType::Q5_1;
    case TensorType::Q6_K: return TensorType::Q8_0;
    default: return TensorType::F16;
  }
}

// llama.cpp's rule for spending more bits on some layers: the first and last eighth, and every
// third layer in between.
bool use_more_bits(int32_t layer, int32_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::string x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

int32_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  try {
    return std::stoi(name.substr(4));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

std::string file_type_name(int64_t file_type) {
  for (const auto& t : targets())
    if (t.file_type == file_type) return t.name;
  // Types edgellm reads but does not write (llama.cpp's numbering).
  switch (file_type) {
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    default: return "";
  }
}

QuantTarget parse_quant_target(const std::string& name) {
  std::string up = name;
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& t : targets())
    if (t.name == up) return t;
  std::string list;
  for (const auto& t : targets()) list += (list.empty() ? "" : " ") + t.name;
  throw InvalidArgument("unknown quantization type '" + name + "' (valid: " + list + ")");
}

TensorType choose_type(const QuantTarget& target, const std::string& name, int64_t n_in, int32_t layer,
                       int32_t n_layer, bool is_output) {
  TensorType t = target.base;
  const bool k_quant = t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K;
  if (is_output) {
    // The output head is the most sensitive matrix: K-quant files keep it at Q6_K; the simple
    // formats keep the embedding at Q8_0 as llama.cpp's converters do for small models.
    if (k_quant) t = TensorType::Q6_K;
    else if (t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16) t = TensorType::Q8_0;
  } else if (target.mixture_m && layer >= 0 &&
             (ends_with(name, "attn_v.weight") || ends_with(name, "ffn_down.weight")) &&
             use_more_bits(layer, n_layer)) {
    t = TensorType::Q6_K;
  }
  while (!fits(t, n_in)) t = fallback(t);
  return t;
}

void quantize_file(const std::string& in_path, const std::string& out_path, const QuantTarget& target,
                   const std::function<void(const std::string&, TensorType)>& progress) {
  if (in_path == out_path) throw InvalidArgument("input and output must be different files");
  auto in = io::GgufFile::open(in_path);
  const std::string arch = in->get_string("general.architecture").value_or("");
  const int32_t n_layer = static_cast<int32_t>(in->get_int(arch + ".block_count").value_or(0));
  const bool tied = in->find_tensor("output.weight") == nullptr;

  io::GgufWriter out;
  for (const auto& [k, v] : in->metadata())
    if (k != "general.alignment") out.set(k, v);
  out.set_u32("general.file_type", target.file_type);
  out.set_u32("general.quantization_version", 2);

  const unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
  for (const auto& t : in->tensors()) {
    const bool matrix = t.ne.size() == 2 && ends_with(t.name, ".weight");
    if (!matrix) {
      out.add_tensor_view(t.name, t.type, t.ne, t.data, t.nbytes);
      if (progress) progress(t.name, t.type);
      continue;
    }
    if (!ops::type_supported(t.type))
      throw ModelFormatError(in_path + ": cannot read tensor '" + t.name + "' of type " +
                             std::string(io::type_name(t.type)));
    const bool is_output = t.name == "output.weight" || (tied && t.name == "token_embd.weight");
    const TensorType to = choose_type(target, t.name, t.ne[0], layer_of(t.name), n_layer, is_output);
    const int64_t n_in = t.ne[0], rows = t.ne[1];
    const size_t in_stride = io::row_bytes(t.type, n_in), out_stride = io::row_bytes(to, n_in);
    std::vector<uint8_t> bytes(out_stride * rows);
    // Rows are independent: split them over threads.
    std::vector<std::thread> workers;
    for (unsigned w = 0; w < n_threads; ++w) {
      workers.emplace_back([&, w] {
        std::vector<float> row(n_in);
        for (int64_t r = w; r < rows; r += n_threads) {
          ops::dequantize_row(t.type, t.data + r * in_stride, row.data(), n_in);
          ops::quantize_row(to, row.data(), bytes.data() + r * out_stride, n_in);
        }
      });
    }
    for (auto& th : workers) th.join();
    out.add_tensor(t.name, to, t.ne, std::move(bytes));
    if (progress) progress(t.name, to);
  }
  out.write(out_path);
}

}  // namespace edgellm::model
