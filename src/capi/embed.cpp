// Embeddings: a session's mean hidden state (edgellm_embed), and the model's own vector
// (edgellm_model_embed: runtime::Embedder for a sentence-embedding model).
#include <algorithm>
#include <cmath>

#include "capi/capi_impl.h"

using namespace edgellm;
using namespace edgellm::capi;

namespace {

// The embedding's size is checked (and reported) before any work.
size_t check_out(size_t n_embd, float* out, size_t max_out, size_t* n_out) {
  require(n_out, "n_out");
  *n_out = n_embd;
  if (max_out < n_embd)
    throw Failure{EDGELLM_ERR_BUFFER_TOO_SMALL,
                  "an embedding is " + std::to_string(n_embd) + " floats; the buffer holds " + std::to_string(max_out)};
  require(out, "out");
  return n_embd;
}

void write_vector(std::vector<float> e, bool normalize, float* out) {
  if (normalize) {
    double norm = 0;
    for (float v : e) norm += static_cast<double>(v) * v;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (float& v : e) v = static_cast<float>(v / norm);
  }
  std::copy(e.begin(), e.end(), out);
}

}  // namespace

extern "C" {

edgellm_status edgellm_embed(edgellm_session* session, const char* text, size_t text_len, bool normalize,
                             float* out, size_t max_out, size_t* n_out) {
  return guard([&] {
    require(session, "session");
    if (!text && text_len > 0) require(text, "text");
    const auto& engine = *session->model->engine;
    check_out(static_cast<size_t>(engine.config().n_embd), out, max_out, n_out);
    const auto ids = engine.tokenize_prompt(std::string(text ? text : "", text_len));
    write_vector(session->session.embed(ids), normalize, out);
  });
}

edgellm_status edgellm_model_embed(edgellm_model* model, const char* text, size_t text_len, bool normalize,
                                   float* out, size_t max_out, size_t* n_out) {
  return guard([&] {
    require(model, "model");
    if (!text && text_len > 0) require(text, "text");
    const std::string t(text ? text : "", text_len);
    if (model->embedder) {
      const auto& emb = *model->embedder;
      check_out(static_cast<size_t>(emb.dim()), out, max_out, n_out);
      const auto ids = emb.tokenize(t);
      if (static_cast<int32_t>(ids.size()) > emb.max_tokens())
        throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "the text is " + std::to_string(ids.size()) +
                                                        " tokens; the model holds " + std::to_string(emb.max_tokens())};
      write_vector(std::move(emb.embed_tokens({ids})[0]), false, out);  // unit length already
      return;
    }
    const auto& engine = *model->engine;
    check_out(static_cast<size_t>(engine.config().n_embd), out, max_out, n_out);
    const auto ids = engine.tokenize_prompt(t);
    if (ids.empty()) throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "the text has no tokens"};
    runtime::Session s(engine, static_cast<int32_t>(ids.size()));
    write_vector(s.embed(ids), normalize, out);
  });
}

}  // extern "C"
