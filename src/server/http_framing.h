#pragma once
// Request framing checks made on the headers alone, before any body byte is read: refuses
// what could desynchronise the connection (request smuggling) or what the server will not read.
#include <cstddef>
#include <string>

#include <httplib.h>

namespace edgellm::server {

struct FramingVerdict {
  int status = 0;  // 0: acceptable; else the HTTP status to answer with (the connection then closes)
  std::string message;
  std::string code;
  explicit operator bool() const { return status != 0; }
};

// - Transfer-Encoding with Content-Length, or more than one Content-Length: 400 (smuggling);
// - a Content-Length that is not plain decimal digits: 400;
// - Transfer-Encoding alone (chunked request bodies are not accepted), or a POST/PUT/PATCH
//   without Content-Length: 411;
// - a declared Content-Length over max_body: 413.
FramingVerdict check_framing(const std::string& method, const httplib::Headers& headers, size_t max_body);

}  // namespace edgellm::server
