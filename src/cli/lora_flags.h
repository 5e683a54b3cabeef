#pragma once
// --lora FILE[:SCALE] (repeatable) on run, chat, perplexity and logits: LoRA adapters applied on
// top of the model for the whole command (model/lora.h).
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "model/lora.h"
#include "model/model.h"

namespace edgellm::cli {

struct LoraSpec {
  std::string path;
  float scale = 1.0f;
};

struct LoraFlags {
  std::vector<std::string> specs;
};
void add_lora_flags(CLI::App& app, LoraFlags& f);

// "FILE" or "FILE:SCALE" (a FILE that exists wins over a split at its last ':'). InvalidArgument
// for a scale that is not a finite number, Error for a file that does not exist; both before any
// model is loaded.
std::vector<LoraSpec> parse_lora_specs(const LoraFlags& f);
// Loads each adapter for `model` (LoraFormatError naming the file and the problem) and prints one
// line per adapter on stderr.
model::LoraSet load_lora(const std::vector<LoraSpec>& specs, const model::Model& model);

}  // namespace edgellm::cli
