#pragma once
// The C API's handles and the one place where C++ exceptions become status codes.
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "edgellm/edgellm.h"
#include "model/lora.h"
#include "runtime/embedder.h"
#include "runtime/engine.h"
#include "sampling/constraint.h"

// A text generator (engine) or a sentence-embedding model (embedder): exactly one is set.
struct edgellm_model {
  std::unique_ptr<edgellm::runtime::Engine> engine;
  std::unique_ptr<edgellm::runtime::Embedder> embedder;
  std::string architecture, name;  // kept for edgellm_model_info's pointers
  // The vocabulary trie of JSON-schema constraints: built on first use, then shared.
  std::once_flag trie_once;
  std::shared_ptr<const edgellm::sampling::TokenTrie> trie;
};

struct edgellm_lora {
  const edgellm_model* model;  // the handle it was checked against
  std::shared_ptr<const edgellm::model::LoraAdapter> adapter;
};

struct edgellm_session {
  edgellm_model* model;
  edgellm::runtime::Session session;
  edgellm::sampling::SamplingParams sampling;
  edgellm::runtime::GenerateResult last;  // what edgellm_generate_result points into
  std::string route_json, tool_calls_json;  // edgellm_routed_result's, beside last.text
};

namespace edgellm::capi {

// An error the API itself detects (NULL handle, small buffer, ...), with its status.
struct Failure {
  edgellm_status status;
  std::string message;
};

// Records the message for edgellm_last_error() on this thread and returns the status.
edgellm_status fail(edgellm_status status, const std::string& message);

// Runs an entry point's body: every exception becomes a status and a message, none escapes.
template <class F>
edgellm_status guard(F&& body) noexcept {
  try {
    body();
    return EDGELLM_OK;
  } catch (const Failure& f) {
    return fail(f.status, f.message);
  } catch (const ModelFormatError& e) {
    return fail(EDGELLM_ERR_MODEL_FORMAT, e.what());
  } catch (const InvalidArgument& e) {
    return fail(EDGELLM_ERR_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(EDGELLM_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(EDGELLM_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(EDGELLM_ERR_INTERNAL, "unknown error");
  }
}

// The integer a C caller stored in an enum field. C allows any int there, while loading an
// out-of-range value as the C++ enum type is undefined, so it is read as bytes.
template <class E>
long long enum_value(const E& e) {
  std::underlying_type_t<E> v;
  std::memcpy(&v, &e, sizeof v);
  return static_cast<long long>(v);
}

// Throws INVALID_ARGUMENT naming `what` when p is NULL.
inline void require(const void* p, const char* what) {
  if (!p) throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL"};
}

// A caller's struct with a struct_size: the fields that fit, over the defaults.
template <class T>
T read_struct(const T* in, const T& defaults, const char* what) {
  T out = defaults;
  if (!in) return out;
  if (in->struct_size < sizeof(size_t))
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT,
                  std::string(what) + ".struct_size is " + std::to_string(in->struct_size) +
                      ": set it to sizeof the struct (the *_init functions do)"};
  std::memcpy(static_cast<void*>(&out), in, std::min(in->struct_size, sizeof(T)));
  out.struct_size = sizeof(T);
  return out;
}

// Writes the fields of `full` that fit in out->struct_size.
template <class T>
void write_struct(T* out, const T& full, const char* what) {
  const size_t size = out->struct_size;
  if (size < sizeof(size_t))
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, std::string(what) + ".struct_size is not set"};
  std::memcpy(static_cast<void*>(out), &full, std::min(size, sizeof(T)));
  out->struct_size = size;
}

// *_init: the defaults, cut to struct_size.
template <class T>
edgellm_status init_struct(T* out, size_t struct_size, const T& defaults, const char* what) {
  return guard([&] {
    require(out, what);
    if (struct_size < sizeof(size_t))
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, std::string(what) + ": struct_size " +
                                                      std::to_string(struct_size) + " is too small"};
    std::memcpy(static_cast<void*>(out), &defaults, std::min(struct_size, sizeof(T)));
    out->struct_size = struct_size;
  });
}

// The model's engine; INVALID_ARGUMENT naming `what` for a sentence-embedding model.
inline runtime::Engine& engine_of(const edgellm_model* m, const char* what) {
  if (!m->engine)
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT,
                  std::string(what) + " needs a text generator; this is a sentence-embedding model (use "
                                      "edgellm_model_embed)"};
  return *m->engine;
}
inline const tokenizer::Tokenizer& tokenizer_of(const edgellm_model* m) {
  return m->engine ? m->engine->tokenizer() : m->embedder->tokenizer();
}

// Copies text with its NUL into (buf, buf_size); *out_len = its length, set even when the
// buffer is too small (then BUFFER_TOO_SMALL and buf untouched).
void write_text(const std::string& text, char* buf, size_t buf_size, size_t* out_len);

// A KV cache type field; INVALID_ARGUMENT naming `what` for a value that is not one.
io::TensorType kv_type(const edgellm_kv_type& field, const char* what);
edgellm_sampling_params default_sampling();
sampling::SamplingParams to_sampling(const edgellm_sampling_params& p);

// session.cpp: the generate options as the runtime takes them (stop strings of the chat template
// are added by chat_prompt), finish reasons, and a conversation's prompt tokens.
edgellm_generate_options default_generate_options();
runtime::GenerateParams generate_params(edgellm_session* s, const edgellm_generate_options& o);
runtime::GenerateParams generate_params(edgellm_model& m, const sampling::SamplingParams& sp,
                                        const edgellm_generate_options& o);
edgellm_finish_reason finish_reason(const std::string& r);
std::vector<int32_t> chat_prompt(edgellm_session* s, const edgellm_chat_message* messages, size_t n,
                                 runtime::GenerateParams& gp);
std::vector<int32_t> chat_prompt(const runtime::Engine& engine, const edgellm_chat_message* messages, size_t n,
                                 runtime::GenerateParams& gp);

}  // namespace edgellm::capi
