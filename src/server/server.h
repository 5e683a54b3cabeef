#pragma once
// OpenAI-compatible HTTP API and the web chat page over one or more models (model_pool.h):
// POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,
// POST /v1/audio/transcriptions, GET /v1/models,
// GET /health, GET /metrics (Prometheus) and GET / (the chat page). Generation goes through
// the continuous-batching runtime::Scheduler.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hybrid/policy.h"
#include "runtime/embedder.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "server/model_pool.h"

namespace edgellm::asr {
class WhisperModel;
}

namespace edgellm::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                // 0: any free port
  std::string api_key;            // empty: no authentication
  size_t max_body = 1 << 20;      // bytes
  int32_t n_queue = 16;           // requests waiting for a slot before 429 (per model)
  int32_t n_batch = 256;          // tokens per forward pass
  int32_t max_n = 16;             // largest "n" accepted
  std::string prompt_cache_dir;   // on-disk prompt cache (--prompt-cache; empty: none)
  std::string slot_save_path;     // folder of POST /slots/{id}?action=save|restore (empty: off)
  int32_t prompt_cache_min = 256; // tokens a prompt must run to be stored there
  // A chat whose messages and room for the answer exceed a slot loses its oldest turns (system
  // messages and the last message stay) and the kept ones are moved down in the slot's cache
  // (--no-context-shift: 400 context_length_exceeded instead).
  bool context_shift = true;
  // Several models (model_pool.h): the sum of the loaded ones' memory estimates stays within
  // mem_budget (0: no limit) and at most models_max are loaded at once (0: no limit).
  uint64_t mem_budget = 0;
  int32_t models_max = 4;
  // Sentence embeddings (serve --embedding-model): /v1/embeddings answers from this model, under
  // its own id (always loaded, outside the pool); without one, only with chat_embeddings
  // (--chat-embeddings: the named chat model's mean hidden state, which is not a sentence
  // embedding), else a 400 saying how to get one.
  std::shared_ptr<const runtime::Embedder> embedder;
  std::string embedding_model_id;
  bool chat_embeddings = false;
  std::string web_dir;            // serve the page from here instead of the embedded copy
  // Adapters of /v1/fine_tuning/jobs (--finetune-dir): kept there; empty: a temporary folder of
  // this process, removed at shutdown.
  std::string finetune_dir;
  // Speech to text (serve --asr-model): POST /v1/audio/transcriptions with this Whisper model
  // (always loaded, outside the pool and the budget), one transcription at a time on a pool of
  // asr_threads threads (0: physical cores); uploads up to max_audio_body bytes (OpenAI's 25 MB).
  // Without a model the route answers 400 transcription_not_enabled.
  std::shared_ptr<const asr::WhisperModel> asr_model;
  std::string asr_model_id;
  int32_t asr_threads = 0;
  size_t max_audio_body = 25 << 20;
  // Connections (docs/server.md, "Connections"): threads serving connections at once, and
  // how long a connection may wait idle for a request / take to send a request's head.
  int32_t http_threads = 1024;
  int32_t idle_timeout_s = 5;
  int32_t header_timeout_s = 10;
  // Speculative decoding (runtime/scheduler.h) of requests without a "speculative" field:
  // kOff, kLookup (--lookup) or kDraft (--draft MODEL, loaded with each model), drafts of at
  // most draft_max tokens (--draft-max).
  runtime::SpecMode speculation = runtime::SpecMode::kOff;
  int32_t draft_max = 8;
  // The draft model's speed settings (--draft-vocab, --draft-p-min; runtime::SchedulerOptions).
  int32_t draft_head_rows = runtime::DraftModelProposer::kDefaultHeadRows;
  float draft_min_confidence = runtime::DraftModelProposer::kDefaultMinConfidence;
  // Learn each request's cost of a drafted token from pass times (--draft-fixed-cost: false).
  bool learn_draft_cost = true;
  // Hybrid device/cloud routing of chat requests (docs/hybrid.md); null: everything local.
  std::shared_ptr<const hybrid::Policy> policy;
};

struct ServerState;

class Server {
 public:
  // The first model is loaded here (its load errors are thrown); the others on first use. Each
  // spec carries its context, slots, KV types and adapters (through its load function).
  Server(std::vector<ModelSpec> models, const ServerOptions& opts);
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
