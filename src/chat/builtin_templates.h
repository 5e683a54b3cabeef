#pragma once
// Chat templates for model families whose GGUF files may lack tokenizer.chat_template
// (base-model conversions often drop it), keyed by general.architecture.
#include <optional>
#include <string>

namespace edgellm::chat {

// The family's turn format as a Jinja template, or nullopt (callers then use ChatML).
std::optional<std::string> builtin_template(const std::string& architecture);

}  // namespace edgellm::chat
