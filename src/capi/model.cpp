// Model handle: loading, metadata, tokens and the chat template.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "capi/capi_impl.h"
#include "capi/messages.h"
#include "io/gguf.h"
#include "model/bert.h"

using namespace edgellm;
using namespace edgellm::capi;

namespace {

// A GGUF value as JSON (arrays of arrays included).
nlohmann::json value_json(const io::Value& v) {
  if (v.is_array()) {
    if (!v.nested.empty()) {
      auto a = nlohmann::json::array();
      for (const auto& n : v.nested) a.push_back(value_json(n));
      return a;
    }
    if (v.elem_type == io::ValueType::STRING) return v.strings;
    if (v.elem_type == io::ValueType::FLOAT32 || v.elem_type == io::ValueType::FLOAT64) return v.floats;
    if (v.elem_type == io::ValueType::BOOL) {
      auto a = nlohmann::json::array();
      for (int64_t b : v.ints) a.push_back(b != 0);
      return a;
    }
    return v.ints;
  }
  return std::visit(
      [](const auto& x) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) return nullptr;
        else return x;
      },
      v.scalar);
}

// Strings as they are, everything else as JSON.
std::string value_text(const io::Value& v) {
  if (const auto* s = std::get_if<std::string>(&v.scalar); s && !v.is_array()) return *s;
  return value_json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const io::GgufFile& file_of(const edgellm_model* m) {
  return m->engine ? m->engine->model().file() : m->embedder->file();
}

const edgellm_model_options kDefaultModelOptions{sizeof(edgellm_model_options), 0};

}  // namespace

extern "C" {

edgellm_status edgellm_model_options_init(edgellm_model_options* options, size_t struct_size) {
  return init_struct(options, struct_size, kDefaultModelOptions, "options");
}

edgellm_status edgellm_model_load(const char* path, const edgellm_model_options* options, edgellm_model** out_model) {
  return guard([&] {
    require(path, "path");
    require(out_model, "out_model");
    const auto opts = read_struct(options, kDefaultModelOptions, "options");
    if (opts.n_threads < 0)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "n_threads must be >= 0 (0: the physical cores), got " +
                                                      std::to_string(opts.n_threads)};
    // A file that cannot be opened is an I/O error, not a bad model.
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Failure{EDGELLM_ERR_IO, std::string(path) + ": cannot open file: " + std::strerror(errno)};
    ::close(fd);
    auto m = std::make_unique<edgellm_model>();
    if (model::BertModel::is_bert(*io::GgufFile::open(path))) {
      m->embedder = runtime::Embedder::load(path, opts.n_threads);
      m->architecture = m->embedder->file().get_string("general.architecture").value_or("bert");
      m->name = m->embedder->config().name;
    } else {
      runtime::EngineOptions eo;
      eo.n_threads = opts.n_threads;
      m->engine = runtime::Engine::load(path, eo);
      m->architecture = m->engine->config().arch;
      m->name = m->engine->config().name;
    }
    *out_model = m.release();
  });
}

void edgellm_model_free(edgellm_model* model) { delete model; }

edgellm_status edgellm_model_get_info(const edgellm_model* model, edgellm_model_info* info) {
  return guard([&] {
    require(model, "model");
    require(info, "info");
    const auto& tok = tokenizer_of(model);
    edgellm_model_info full{};
    full.struct_size = sizeof full;
    full.architecture = model->architecture.c_str();
    full.name = model->name.c_str();
    if (model->engine) {
      const auto& c = model->engine->config();
      full.n_vocab = c.n_vocab;
      full.n_ctx_train = c.n_ctx_train;
      full.n_embd = c.n_embd;
      full.n_layer = c.n_layer;
      full.n_head = c.n_head;
      full.n_head_kv = c.n_head_kv;
    } else {
      const auto& c = model->embedder->config();
      full.n_vocab = c.n_vocab;
      full.n_ctx_train = c.n_ctx;
      full.n_embd = c.n_embd;
      full.n_layer = c.n_layer;
      full.n_head = c.n_head;
      full.n_head_kv = c.n_head;
      full.embedding_only = true;
    }
    full.bos_token = tok.bos_id();
    full.eos_token = tok.eos_id();
    full.file_size = file_of(model).file_size();
    write_struct(info, full, "info");
  });
}

edgellm_status edgellm_model_meta(const edgellm_model* model, const char* key, char* buf, size_t buf_size,
                                  size_t* out_len) {
  return guard([&] {
    require(model, "model");
    require(key, "key");
    const io::Value* v = file_of(model).find(key);
    if (!v) throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, std::string("no metadata key '") + key + "'"};
    write_text(value_text(*v), buf, buf_size, out_len);
  });
}

bool edgellm_token_is_eog(const edgellm_model* model, int32_t token) {
  if (!model) return false;
  const auto& tok = tokenizer_of(model);
  return token >= 0 && token < tok.n_vocab() && tok.is_end_of_generation(token);
}

edgellm_status edgellm_tokenize(const edgellm_model* model, const char* text, size_t text_len, bool add_bos,
                                bool parse_special, int32_t* tokens, size_t max_tokens, size_t* n_tokens) {
  return guard([&] {
    require(model, "model");
    require(n_tokens, "n_tokens");
    if (!text && text_len > 0) require(text, "text");
    const auto ids = tokenizer_of(model).encode(std::string_view(text ? text : "", text_len), add_bos,
                                                       parse_special);
    *n_tokens = ids.size();
    if (ids.size() > max_tokens)
      throw Failure{EDGELLM_ERR_BUFFER_TOO_SMALL, "the text is " + std::to_string(ids.size()) +
                                                      " tokens; the buffer holds " + std::to_string(max_tokens)};
    if (!ids.empty()) require(tokens, "tokens");
    std::copy(ids.begin(), ids.end(), tokens);
  });
}

edgellm_status edgellm_detokenize(const edgellm_model* model, const int32_t* tokens, size_t n_tokens,
                                  bool skip_special, char* buf, size_t buf_size, size_t* out_len) {
  return guard([&] {
    require(model, "model");
    if (n_tokens > 0) require(tokens, "tokens");
    std::vector<int32_t> ids(tokens, tokens + n_tokens);
    write_text(tokenizer_of(model).decode(ids, skip_special), buf, buf_size, out_len);
  });
}

edgellm_status edgellm_chat_render(const edgellm_model* model, const edgellm_chat_message* messages,
                                   size_t n_messages, bool add_generation_prompt, char* buf, size_t buf_size,
                                   size_t* out_len) {
  return guard([&] {
    require(model, "model");
    const auto& engine = engine_of(model, "edgellm_chat_render");
    const auto msgs = chat_messages(messages, n_messages);
    write_text(render_template([&] { return engine.formatter().format(msgs, add_generation_prompt); }),
               buf, buf_size, out_len);
  });
}

}  // extern "C"
