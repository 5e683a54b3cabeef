// POST /v1/embeddings when the server has a sentence-embedding model (serve --embedding-model):
// the texts go to runtime::Embedder (BERT, mean pooling, unit length) on the request's thread,
// never through the chat model's scheduler. The response's "model" is the embedding model's id;
// a request naming a served chat model is refused, so a decoder's hidden state never passes for a
// sentence embedding (docs/server.md, "Embeddings").
#include <chrono>
#include <cstring>

#include "server/api_error.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;
constexpr size_t kMaxInputs = 256;

std::vector<int32_t> token_ids(const ojson& a, int32_t n_vocab) {
  std::vector<int32_t> ids;
  for (const auto& x : a) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() >= n_vocab)
      throw ApiError(400, "\"input\" token ids must be integers in 0.." + std::to_string(n_vocab - 1), "input",
                     "invalid_value");
    ids.push_back(x.get<int32_t>());
  }
  return ids;
}

std::vector<std::vector<int32_t>> parse_inputs(const ojson& body, const runtime::Embedder& emb) {
  if (!body.contains("input") || body["input"].is_null()) throw ApiError(400, "\"input\" is required", "input");
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    const auto& f = body["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64"))
      throw ApiError(400, "\"encoding_format\" must be \"float\" or \"base64\"", "encoding_format");
  }
  if (body.contains("dimensions") && !body["dimensions"].is_null())
    throw ApiError(400, "\"dimensions\" is not supported (embeddings have the model's width)", "dimensions",
                   "unsupported_parameter");
  const auto& in = body["input"];
  // Empty texts are refused as OpenAI does (they would still tokenize to [CLS] [SEP]).
  if (in.is_string() && in.get<std::string>().empty())
    throw ApiError(400, "\"input\" must not contain empty strings", "input", "invalid_value");
  if (in.is_array())
    for (const auto& x : in)
      if ((x.is_string() && x.get<std::string>().empty()) || (x.is_array() && x.empty()))
        throw ApiError(400, "\"input\" must not contain empty items", "input", "invalid_value");
  const int32_t n_vocab = emb.config().n_vocab;
  std::vector<std::vector<int32_t>> out;
  if (in.is_string()) out.push_back(emb.tokenize(in.get<std::string>()));
  else if (in.is_array() && !in.empty() && in[0].is_number()) out.push_back(token_ids(in, n_vocab));
  else if (in.is_array() && !in.empty()) {
    for (const auto& x : in) {
      if (out.size() == kMaxInputs) break;  // refused below without tokenizing the rest
      if (x.is_string()) out.push_back(emb.tokenize(x.get<std::string>()));
      else if (x.is_array()) out.push_back(token_ids(x, n_vocab));
      else throw ApiError(400, "\"input\" items must be strings or token arrays", "input", "invalid_type");
    }
  } else {
    throw ApiError(400, "\"input\" must be a string, an array of strings or token arrays", "input", "invalid_type");
  }
  if (in.is_array() && in.size() > kMaxInputs && !in[0].is_number())
    throw ApiError(400, "at most " + std::to_string(kMaxInputs) + " inputs per request", "input");
  for (const auto& ids : out) {
    if (ids.empty()) throw ApiError(400, "\"input\" must not contain empty items", "input", "invalid_value");
    if (static_cast<int64_t>(ids.size()) > emb.max_tokens())
      throw ApiError(400, "an input has " + std::to_string(ids.size()) + " tokens; the embedding model takes at most " +
                              std::to_string(emb.max_tokens()), "input", "context_length_exceeded");
  }
  return out;
}

}  // namespace

void embed_sentences(ServerState& st, const ojson& body, httplib::Response& res) {
  const auto t0 = Clock::now();
  const runtime::Embedder& emb = *st.opts.embedder;
  const std::string& id = st.opts.embedding_model_id;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) throw ApiError(400, "\"model\" must be a string", "model", "invalid_type");
    const std::string m = body["model"].get<std::string>();
    bool is_chat_model = false;
    for (const auto& spec : st.pool->specs()) is_chat_model = is_chat_model || spec.name == m;
    if (is_chat_model)
      throw ApiError(400, "'" + m + "' is a chat model and does not make sentence embeddings; this server's come from '" +
                              id + "'", "model", "model_not_embedding");
    if (m != id) {
      const std::string shown = m.size() > 256 ? m.substr(0, 256) + "..." : m;
      throw ApiError(404, "The model '" + shown + "' does not exist; this server embeds with '" + id + "'", "model",
                     "model_not_found");
    }
  }
  const auto inputs = parse_inputs(body, emb);
  const bool b64 = body.contains("encoding_format") && body["encoding_format"] == "base64";
  std::vector<std::vector<float>> vecs;
  try {
    vecs = emb.embed_tokens(inputs);
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), "input");
  }
  ojson data = ojson::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < vecs.size(); ++i) {
    n_tokens += static_cast<int64_t>(inputs[i].size());
    ojson item = {{"object", "embedding"}, {"index", i}};
    if (b64) {
      std::vector<unsigned char> bytes(vecs[i].size() * 4);
      std::memcpy(bytes.data(), vecs[i].data(), bytes.size());  // little-endian hosts
      item["embedding"] = base64(bytes.data(), bytes.size());
    } else {
      item["embedding"] = vecs[i];
    }
    data.push_back(std::move(item));
  }
  send_json(res, {{"object", "list"}, {"data", data}, {"model", id},
                  {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
  st.metrics.latency("/v1/embeddings", std::chrono::duration<double>(Clock::now() - t0).count());
}

nlohmann::ordered_json embedding_model_json(const ServerState& st) {
  const auto& c = st.opts.embedder->config();
  return {{"id", st.opts.embedding_model_id}, {"object", "model"}, {"created", st.created}, {"owned_by", "edgellm"},
          {"meta", {{"kind", "embedding"}, {"n_ctx", c.n_ctx}, {"n_vocab", c.n_vocab}, {"n_embd", c.n_embd},
                    {"n_layer", c.n_layer}, {"pooling", c.pooling == model::BertPooling::Cls ? "cls" : "mean"}}}};
}

}  // namespace edgellm::server
