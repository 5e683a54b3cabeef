#pragma once
// Errors a user can act on. Every layer throws edgellm::Error (or a subclass) with a message
// that names the file, key, tensor or argument at fault; front ends print it on one line.
#include <stdexcept>
#include <string>

namespace edgellm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad or unsupported model file (GGUF structure, metadata, tensors).
class ModelFormatError : public Error {
 public:
  using Error::Error;
};

// Bad request or argument from the caller (empty prompt, prompt longer than context, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

}  // namespace edgellm
