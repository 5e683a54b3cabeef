// LoRA adapters: loaded against a model handle, chosen per session (model/lora.h).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "capi/capi_impl.h"

using namespace edgellm;
using namespace edgellm::capi;

extern "C" {

edgellm_status edgellm_lora_load(const edgellm_model* model, const char* path, edgellm_lora** out_lora) {
  return guard([&] {
    require(model, "model");
    require(path, "path");
    require(out_lora, "out_lora");
    const auto& engine = engine_of(model, "edgellm_lora_load");
    // A file that cannot be opened is an I/O error, not a bad adapter.
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Failure{EDGELLM_ERR_IO, std::string(path) + ": cannot open file: " + std::strerror(errno)};
    ::close(fd);
    auto l = std::make_unique<edgellm_lora>();
    l->model = model;
    l->adapter = model::LoraAdapter::load(path, engine.model());
    *out_lora = l.release();
  });
}

void edgellm_lora_free(edgellm_lora* lora) { delete lora; }

edgellm_status edgellm_session_set_lora(edgellm_session* session, const edgellm_lora* const* adapters,
                                        const float* scales, size_t n) {
  return guard([&] {
    require(session, "session");
    model::LoraSet set;
    if (n > 0) {
      require(adapters, "adapters");
      require(scales, "scales");
    }
    for (size_t i = 0; i < n; ++i) {
      const std::string at = "adapters[" + std::to_string(i) + "]";
      require(adapters[i], at.c_str());
      if (adapters[i]->model != session->model)
        throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, at + " was loaded for another model handle"};
      if (!std::isfinite(scales[i]))
        throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "scales[" + std::to_string(i) + "] is not a finite number"};
      set.entries.push_back({adapters[i]->adapter, scales[i]});
    }
    session->session.set_lora(std::move(set));
  });
}

}  // extern "C"
