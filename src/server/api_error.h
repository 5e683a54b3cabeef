#pragma once
// OpenAI-style API errors: {"error": {"message", "type", "param", "code"}} with an HTTP status.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace edgellm::server {

struct ApiError : std::runtime_error {
  ApiError(int status_, std::string message_, std::string param_ = "", std::string code_ = "",
           std::string type_ = "")
      : std::runtime_error(message_), status(status_), message(std::move(message_)), param(std::move(param_)),
        code(std::move(code_)), type(type_.empty() ? default_type(status_) : std::move(type_)) {}

  int status;
  // The whole text: what() ends at the first NUL, and messages quote what clients sent (a model
  // id with a NUL in it). JSON escapes it in body().
  std::string message;
  std::string param, code, type;

  static std::string default_type(int status) {
    if (status == 401) return "authentication_error";
    if (status == 403) return "permission_error";
    if (status == 404) return "invalid_request_error";
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
  }

  nlohmann::json body() const {
    nlohmann::json e = {{"message", message}, {"type", type}};
    e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
    e["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
    return {{"error", e}};
  }
};

}  // namespace edgellm::server
