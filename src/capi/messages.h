#pragma once
// C chat messages to the engine's chat types, and template errors to EDGELLM_ERR_TEMPLATE.
#include <string>
#include <vector>

#include "capi/capi_impl.h"
#include "chat/message.h"

namespace edgellm::capi {

// InvalidArgument for a NULL array with n > 0, a NULL role or content, or no messages.
std::vector<chat::Message> chat_messages(const edgellm_chat_message* messages, size_t n);

// Runs a template rendering; an engine error other than a bad argument (the template raised,
// or failed on these messages) becomes EDGELLM_ERR_TEMPLATE.
template <class F>
auto render_template(F&& render) -> decltype(render()) {
  try {
    return render();
  } catch (const InvalidArgument&) {
    throw;
  } catch (const Error& e) {
    throw Failure{EDGELLM_ERR_TEMPLATE, std::string("chat template: ") + e.what()};
  }
}

}  // namespace edgellm::capi
