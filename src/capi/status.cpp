// Status codes, the thread-local last error, versions, and the struct helpers.
#include <string>

#include "capi/capi_impl.h"

namespace edgellm::capi {

thread_local std::string t_last_error;

edgellm_status fail(edgellm_status status, const std::string& message) {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();  // no memory for the message: the status still tells
  }
  return status;
}

void write_text(const std::string& text, char* buf, size_t buf_size, size_t* out_len) {
  require(out_len, "out_len");
  *out_len = text.size();
  if (buf_size < text.size() + 1)
    throw Failure{EDGELLM_ERR_BUFFER_TOO_SMALL, "the text needs " + std::to_string(text.size() + 1) +
                                                    " bytes with its NUL; the buffer has " + std::to_string(buf_size)};
  require(buf, "buf");
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
}

}  // namespace edgellm::capi

using namespace edgellm::capi;

extern "C" {

const char* edgellm_last_error(void) { return t_last_error.c_str(); }

const char* edgellm_status_name(edgellm_status status) {
  switch (enum_value(status)) {
    case EDGELLM_OK: return "EDGELLM_OK";
    case EDGELLM_ERR_INVALID_ARGUMENT: return "EDGELLM_ERR_INVALID_ARGUMENT";
    case EDGELLM_ERR_IO: return "EDGELLM_ERR_IO";
    case EDGELLM_ERR_MODEL_FORMAT: return "EDGELLM_ERR_MODEL_FORMAT";
    case EDGELLM_ERR_BUFFER_TOO_SMALL: return "EDGELLM_ERR_BUFFER_TOO_SMALL";
    case EDGELLM_ERR_SCHEMA: return "EDGELLM_ERR_SCHEMA";
    case EDGELLM_ERR_TEMPLATE: return "EDGELLM_ERR_TEMPLATE";
    case EDGELLM_ERR_OUT_OF_MEMORY: return "EDGELLM_ERR_OUT_OF_MEMORY";
    case EDGELLM_ERR_INTERNAL: return "EDGELLM_ERR_INTERNAL";
    case EDGELLM_ERR_BAD_STATE: return "EDGELLM_ERR_BAD_STATE";
    case EDGELLM_ERR_CLOUD: return "EDGELLM_ERR_CLOUD";
    case EDGELLM_ERR_UNSUPPORTED: return "EDGELLM_ERR_UNSUPPORTED";
    default: break;
  }
  return "EDGELLM_ERR_UNKNOWN_STATUS";
}

int edgellm_api_version(void) { return EDGELLM_API_VERSION; }

const char* edgellm_version(void) { return EDGELLM_VERSION_STRING; }

}  // extern "C"
