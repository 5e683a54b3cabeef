#pragma once
// OpenAI-compatible HTTP API and the web chat page over one loaded model:
// POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, GET /v1/models,
// GET /health, GET /metrics (Prometheus) and GET / (the chat page). Generation goes through
// the continuous-batching runtime::Scheduler.
#include <cstdint>
#include <memory>
#include <string>

#include "hybrid/policy.h"
#include "runtime/embedder.h"
#include "runtime/engine.h"

namespace edgellm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                // 0: any free port
  std::string api_key;            // empty: no authentication
  size_t max_body = 1 << 20;      // bytes
  int32_t n_parallel = 4;         // slots
  int32_t n_queue = 16;           // requests waiting for a slot before 429
  int32_t n_ctx = 4096;           // per slot
  int32_t n_batch = 256;          // tokens per forward pass
  int32_t max_n = 16;             // largest "n" accepted
  model::KvTypes kv_types;        // KV cache storage types of every slot (-ctk / -ctv)
  std::string prompt_cache_dir;   // on-disk prompt cache (--prompt-cache; empty: none)
  std::string slot_save_path;     // folder of POST /slots/{id}?action=save|restore (empty: off)
  int32_t prompt_cache_min = 256; // tokens a prompt must run to be stored there
  // LoRA adapters every request runs with (--lora, loaded at start). The scheduler takes a set
  // per request, so choosing per request is a matter of the API, not of the engine.
  model::LoraSet lora;
  std::string model_id;           // name clients use in "model"
  // Sentence embeddings (serve --embedding-model): /v1/embeddings answers from this model, under
  // its own id; without one, only with chat_embeddings (--chat-embeddings: the chat model's mean
  // hidden state, which is not a sentence embedding), else a 400 saying how to get one.
  std::shared_ptr<const runtime::Embedder> embedder;
  std::string embedding_model_id;
  bool chat_embeddings = false;
  std::string web_dir;            // serve the page from here instead of the embedded copy
  // Connections (docs/server.md, "Connections"): threads serving connections at once, and
  // how long a connection may wait idle for a request / take to send a request's head.
  int32_t http_threads = 1024;
  int32_t idle_timeout_s = 5;
  int32_t header_timeout_s = 10;
  // Hybrid device/cloud routing of chat requests (docs/hybrid.md); null: everything local.
  std::shared_ptr<const hybrid::Policy> policy;
};

struct ServerState;

class Server {
 public:
  Server(const runtime::Engine& engine, const ServerOptions& opts);
  ~Server();
  // Binds the socket; returns the port (useful with port 0). Throws Error when it cannot.
  int bind();
  // Serves until stop() (from another thread). Returns false if the listener failed.
  bool listen();
  void stop();

 private:
  std::unique_ptr<ServerState> st_;
};

}  // namespace edgellm::server
