#include "server/http_framing.h"

namespace edgellm::server {
namespace {

FramingVerdict refuse(int status, std::string message, std::string code) {
  return {status, std::move(message), std::move(code)};
}

}  // namespace

FramingVerdict check_framing(const std::string& method, const httplib::Headers& headers, size_t max_body) {
  const size_t n_length = headers.count("Content-Length");
  const size_t n_coding = headers.count("Transfer-Encoding");
  if (n_coding > 0 && n_length > 0)
    return refuse(400, "The request has both Transfer-Encoding and Content-Length; send only Content-Length",
                  "invalid_framing");
  if (n_length > 1)
    return refuse(400, "The request has more than one Content-Length header", "invalid_framing");
  if (n_coding > 0)
    return refuse(411, "Transfer-Encoding request bodies are not accepted; send the body with Content-Length",
                  "length_required");
  if (n_length == 0) {
    if (method == "POST" || method == "PUT" || method == "PATCH")
      return refuse(411, "A " + method + " request needs a Content-Length header", "length_required");
    return {};
  }
  const std::string& v = headers.find("Content-Length")->second;
  // Plain digits only: strtoull would also take signs, spaces and hex-looking prefixes.
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
    return refuse(400, "The Content-Length header is not a decimal number", "invalid_framing");
  if (std::stoull(v) > max_body)
    return refuse(413, "The request body is larger than the limit of " + std::to_string(max_body) + " bytes",
                  "request_too_large");
  return {};
}

}  // namespace edgellm::server
