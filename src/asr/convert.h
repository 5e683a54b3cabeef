#pragma once
// `edgellm convert`: a CTranslate2 Whisper model folder (model.bin, config.json, tokenizer.json,
// vocabulary.txt) -> one GGUF file holding the weights, the hyper-parameters and the tokenizer.
// Names and layout: docs/whisper.md.
#include <string>

#include "io/tensor_type.h"

namespace edgellm::asr {

// `type` is F16 or F32: the type of the matrices and convolution kernels (vectors stay F32).
// Quantized files come from this one through `edgellm quantize`. Throws ModelFormatError for a
// folder that is not a CTranslate2 Whisper model, InvalidArgument for another type.
void convert_ct2_whisper(const std::string& dir, const std::string& out_path, io::TensorType type);

}  // namespace edgellm::asr
