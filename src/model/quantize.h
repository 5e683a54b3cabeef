#pragma once
// Converts a GGUF model's weight matrices to another format (like llama.cpp's quantize):
// metadata is copied, norms and other vectors stay as they are.
#include <functional>
#include <string>

#include "io/tensor_type.h"

namespace edgellm::model {

// Named targets: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K, and the mixtures
// Q4_K_M / Q5_K_M (attn_v and ffn_down of some layers, and the output head, in Q6_K).
struct QuantTarget {
  std::string name;
  io::TensorType base;
  bool mixture_m = false;
  uint32_t file_type = 0;  // general.file_type value (llama.cpp's LLAMA_FTYPE numbering)
};

// Throws InvalidArgument listing the valid names.
QuantTarget parse_quant_target(const std::string& name);

// The name of a general.file_type value (llama.cpp's LLAMA_FTYPE numbering, e.g. 15 -> "Q4_K_M"),
// empty for a value it does not know. A file's type is its recipe: a Q4_K_M file holds Q4_K,
// Q6_K and sometimes Q5_0 or Q8_0 matrices, so the most common matrix type does not name it.
std::string file_type_name(int64_t file_type);

// The type a matrix gets: the target's, or, when its row length is not a multiple of that
// type's block, the nearest type that fits (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; then F16).
io::TensorType choose_type(const QuantTarget& target, const std::string& tensor_name, int64_t n_in,
                           int32_t layer, int32_t n_layer, bool is_output);

// Progress receives (tensor name, chosen type) for each tensor written.
void quantize_file(const std::string& in_path, const std::string& out_path, const QuantTarget& target,
                   const std::function<void(const std::string&, io::TensorType)>& progress = nullptr);

}  // namespace edgellm::model
