#pragma once
// Shared pieces of the subcommands: model lookup, sampling flags, reading prompt files.
#include <string>

#include <CLI/CLI.hpp>

#include "runtime/engine.h"

namespace edgellm::cli {

// Default model file name inside the model cache.
inline constexpr const char* kDefaultModel = "SmolLM2-135M-Instruct.Q4_1.gguf";

// $EDGELLM_MODEL_DIR, else ~/.cache/edgellm/models.
std::string model_dir();
// Empty -> the default model in the cache. Throws Error with the fetch command when absent.
std::string resolve_model(const std::string& path);

// Adds llama.cpp-style sampling flags that fill `p`.
void add_sampling_flags(CLI::App& app, sampling::SamplingParams& p);

std::string read_file(const std::string& path);

// --exact: fp32 activations in every matmul (see ops::set_exact_activations).
void add_exact_flag(CLI::App& app);

}  // namespace edgellm::cli
