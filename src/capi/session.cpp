// Session handle: creation, sampling parameters, generation and chat.
#include <cerrno>
#include <cmath>
#include <cstring>

#include "capi/capi_impl.h"
#include "capi/messages.h"
#include "capi/schema.h"
#include "model/kv_cache.h"
#include "runtime/session_file.h"

using namespace edgellm;
using namespace edgellm::capi;

namespace edgellm::capi {

edgellm_sampling_params default_sampling() {
  const sampling::SamplingParams d;
  edgellm_sampling_params p{};
  p.struct_size = sizeof p;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.presence_penalty = d.presence_penalty;
  p.frequency_penalty = d.frequency_penalty;
  p.seed = d.seed;
  return p;
}

sampling::SamplingParams to_sampling(const edgellm_sampling_params& p) {
  sampling::SamplingParams s;
  s.temperature = p.temperature;
  s.top_k = p.top_k;
  s.top_p = p.top_p;
  s.min_p = p.min_p;
  s.repeat_penalty = p.repeat_penalty;
  s.repeat_last_n = p.repeat_last_n;
  s.presence_penalty = p.presence_penalty;
  s.frequency_penalty = p.frequency_penalty;
  s.seed = p.seed;
  if (!std::isfinite(s.temperature) || !std::isfinite(s.top_p) || !std::isfinite(s.min_p) ||
      !std::isfinite(s.repeat_penalty) || !std::isfinite(s.presence_penalty) || !std::isfinite(s.frequency_penalty))
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "sampling parameters must be finite numbers"};
  if (s.repeat_penalty <= 0)
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "repeat_penalty must be > 0 (1: off)"};
  if (s.repeat_last_n < -1)
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "repeat_last_n must be >= -1 (-1: whole history)"};
  return s;
}

edgellm_generate_options default_generate_options() {
  edgellm_generate_options o{};
  o.struct_size = sizeof o;
  o.max_tokens = 256;
  return o;
}

runtime::GenerateParams generate_params(edgellm_session* s, const edgellm_generate_options& o) {
  return generate_params(*s->model, s->sampling, o);
}

runtime::GenerateParams generate_params(edgellm_model& m, const sampling::SamplingParams& sp,
                                        const edgellm_generate_options& o) {
  runtime::GenerateParams gp;
  gp.sampling = sp;
  gp.max_tokens = o.max_tokens;
  gp.ignore_eos = o.ignore_eos;
  if (o.n_stop > 0) require(o.stop, "options.stop");
  for (size_t i = 0; i < o.n_stop; ++i) {
    require(o.stop[i], ("options.stop[" + std::to_string(i) + "]").c_str());
    if (!*o.stop[i]) throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "options.stop[" + std::to_string(i) + "] is empty"};
    gp.stop.emplace_back(o.stop[i]);
  }
  if (o.json_schema) gp.constraint = schema_constraint(m, o.json_schema);
  if (o.on_token) {
    const auto cb = o.on_token;
    void* const user = o.user_data;
    gp.on_token = [cb, user](int32_t id, std::string_view text) { return cb(id, text.data(), text.size(), user); };
  }
  return gp;
}

edgellm_finish_reason finish_reason(const std::string& r) {
  if (r == "length") return EDGELLM_FINISH_LENGTH;
  if (r == "cancelled") return EDGELLM_FINISH_CANCELLED;
  return EDGELLM_FINISH_STOP;
}

std::vector<int32_t> chat_prompt(edgellm_session* s, const edgellm_chat_message* messages, size_t n,
                                 runtime::GenerateParams& gp) {
  return chat_prompt(*s->model->engine, messages, n, gp);
}

std::vector<int32_t> chat_prompt(const runtime::Engine& engine, const edgellm_chat_message* messages, size_t n,
                                 runtime::GenerateParams& gp) {
  const auto msgs = chat_messages(messages, n);
  auto ids = render_template([&] { return engine.tokenize_chat(msgs, true); });
  for (const auto& stop : engine.formatter().stop_strings()) gp.stop.push_back(stop);
  return ids;
}

std::vector<chat::Message> chat_messages(const edgellm_chat_message* messages, size_t n) {
  if (n == 0) throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "no messages: give at least one"};
  require(messages, "messages");
  std::vector<chat::Message> out;
  for (size_t i = 0; i < n; ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    require(messages[i].role, (at + ".role").c_str());
    require(messages[i].content, (at + ".content").c_str());
    out.push_back({messages[i].role, messages[i].content});
  }
  return out;
}

io::TensorType kv_type(const edgellm_kv_type& field, const char* what) {
  const long long t = enum_value(field);
  switch (t) {
    case EDGELLM_KV_F32: return io::TensorType::F32;
    case EDGELLM_KV_F16: return io::TensorType::F16;
    case EDGELLM_KV_Q8_0: return io::TensorType::Q8_0;
    case EDGELLM_KV_Q4_0: return io::TensorType::Q4_0;
    default: break;
  }
  throw Failure{EDGELLM_ERR_INVALID_ARGUMENT,
                std::string(what) + " is not an edgellm_kv_type (" + std::to_string(t) + ")"};
}

}  // namespace edgellm::capi

namespace {

edgellm_session_options default_session_options() {
  edgellm_session_options o{};
  o.struct_size = sizeof o;
  o.n_ctx = 4096;
  o.type_k = EDGELLM_KV_F32;
  o.type_v = EDGELLM_KV_F32;
  o.sampling = nullptr;
  return o;
}

void run(edgellm_session* s, const std::vector<int32_t>& prompt, const runtime::GenerateParams& gp,
         edgellm_generate_result* result) {
  if (result && result->struct_size < sizeof(size_t))
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "result.struct_size is not set"};
  s->last = s->session.generate(prompt, gp);
  if (!result) return;
  edgellm_generate_result full{};
  full.struct_size = sizeof full;
  full.finish_reason = finish_reason(s->last.finish_reason);
  full.text = s->last.text.c_str();
  full.text_len = s->last.text.size();
  full.tokens = s->last.tokens.data();
  full.n_tokens = static_cast<int32_t>(s->last.tokens.size());
  full.n_prompt = s->last.n_prompt;
  full.n_prompt_evaluated = s->last.n_prompt_evaluated;
  full.prefill_seconds = s->last.prefill_seconds;
  full.decode_seconds = s->last.decode_seconds;
  write_struct(result, full, "result");
}

}  // namespace

extern "C" {

edgellm_status edgellm_sampling_params_init(edgellm_sampling_params* params, size_t struct_size) {
  return init_struct(params, struct_size, default_sampling(), "params");
}

edgellm_status edgellm_session_options_init(edgellm_session_options* options, size_t struct_size) {
  return init_struct(options, struct_size, default_session_options(), "options");
}

edgellm_status edgellm_generate_options_init(edgellm_generate_options* options, size_t struct_size) {
  return init_struct(options, struct_size, default_generate_options(), "options");
}

edgellm_status edgellm_session_create(edgellm_model* model, const edgellm_session_options* options,
                                      edgellm_session** out_session) {
  return guard([&] {
    require(model, "model");
    require(out_session, "out_session");
    engine_of(model, "edgellm_session_create");
    const auto o = read_struct(options, default_session_options(), "options");
    if (o.n_ctx <= 0)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "n_ctx must be > 0, got " + std::to_string(o.n_ctx)};
    const auto sp = to_sampling(read_struct(o.sampling, default_sampling(), "options.sampling"));
    const model::KvTypes kv{kv_type(o.type_k, "type_k"), kv_type(o.type_v, "type_v")};
    auto* s = new edgellm_session{model, runtime::Session(engine_of(model, "edgellm_session_create"), o.n_ctx, kv),
                                  sp, {}, {}, {}};
    *out_session = s;
  });
}

void edgellm_session_free(edgellm_session* session) { delete session; }

edgellm_status edgellm_session_reset(edgellm_session* session) {
  return guard([&] {
    require(session, "session");
    session->session.reset();
  });
}

edgellm_status edgellm_session_set_sampling(edgellm_session* session, const edgellm_sampling_params* params) {
  return guard([&] {
    require(session, "session");
    require(params, "params");
    session->sampling = to_sampling(read_struct(params, default_sampling(), "params"));
  });
}

edgellm_status edgellm_session_save(const edgellm_session* session, const char* path) {
  return guard([&] {
    require(session, "session");
    require(path, "path");
    try {
      session->session.save(path);
    } catch (const runtime::SavedStateError& e) {
      throw Failure{EDGELLM_ERR_BAD_STATE, e.what()};
    } catch (const Error& e) {
      throw Failure{EDGELLM_ERR_IO, e.what()};
    }
  });
}

edgellm_status edgellm_session_load(edgellm_session* session, const char* path) {
  return guard([&] {
    require(session, "session");
    require(path, "path");
    try {
      session->session.restore(path);
    } catch (const runtime::SavedStateError& e) {
      throw Failure{EDGELLM_ERR_BAD_STATE, e.what()};
    } catch (const Error& e) {
      throw Failure{EDGELLM_ERR_IO, e.what()};
    }
  });
}

int32_t edgellm_session_n_ctx(const edgellm_session* session) { return session ? session->session.n_ctx() : 0; }

int32_t edgellm_session_n_tokens(const edgellm_session* session) {
  return session ? static_cast<int32_t>(session->session.tokens().size()) : 0;
}

edgellm_status edgellm_generate(edgellm_session* session, const int32_t* prompt, size_t n_prompt,
                                const edgellm_generate_options* options, edgellm_generate_result* result) {
  return guard([&] {
    require(session, "session");
    if (n_prompt > 0) require(prompt, "prompt");
    const auto o = read_struct(options, default_generate_options(), "options");
    const int32_t n_vocab = session->model->engine->tokenizer().n_vocab();
    for (size_t i = 0; i < n_prompt; ++i)
      if (prompt[i] < 0 || prompt[i] >= n_vocab)
        throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "prompt[" + std::to_string(i) + "] = " + std::to_string(prompt[i]) +
                                                        " is not a token id (the vocabulary has " +
                                                        std::to_string(n_vocab) + ")"};
    run(session, std::vector<int32_t>(prompt, prompt + n_prompt), generate_params(session, o), result);
  });
}

edgellm_status edgellm_chat(edgellm_session* session, const edgellm_chat_message* messages, size_t n_messages,
                            const edgellm_generate_options* options, edgellm_generate_result* result) {
  return guard([&] {
    require(session, "session");
    const auto o = read_struct(options, default_generate_options(), "options");
    auto gp = generate_params(session, o);
    const auto ids = chat_prompt(session, messages, n_messages, gp);
    run(session, ids, gp, result);
  });
}

}  // extern "C"
