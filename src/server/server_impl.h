#pragma once
// State shared by the route handlers of one Server (internal to src/server).
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <httplib.h>

#include "runtime/scheduler.h"
#include "server/asr_worker.h"
#include "server/finetune_jobs.h"
#include "server/http_conn.h"
#include "server/metrics.h"
#include "server/model_pool.h"
#include "server/request.h"
#include "server/server.h"
#include "hybrid/orchestrator.h"

namespace edgellm::server {

using Clock = std::chrono::steady_clock;

struct ServerState {
  ServerOptions opts;
  std::unique_ptr<ModelPool> pool;
  std::unique_ptr<hybrid::Orchestrator> orch;  // set when a routing policy was given
  Metrics metrics;
  HttpServer http;  // httplib with edgellm's connection loop (http_conn.h)
  int64_t created = 0;  // unix time the server started (the embedding model's "created")
  std::unique_ptr<AsrWorker> asr;  // set with opts.asr_model
  std::unique_ptr<FineTuning> finetune;  // /v1/fine_tuning/jobs (stopped before the pool goes)
};

// Sends an OpenAI-style error.
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& code = "");
void send_json(httplib::Response& res, const nlohmann::ordered_json& j, int status = 200);

// Runs f(req, res) and turns its exceptions into OpenAI-style errors: ApiError as given,
// InvalidArgument as 400, anything else as 500.
void answer_guarded(const httplib::Request& req, httplib::Response& res,
                    const std::function<void(const httplib::Request&, httplib::Response&)>& f);
template <typename F>
httplib::Server::Handler guarded(F f) {
  return [f](const httplib::Request& req, httplib::Response& res) { answer_guarded(req, res, f); };
}

// The model a request names in "model" (absent: the first served one), leased for the request;
// waits while it loads. ApiError as ModelPool::acquire; ClientGone when the client leaves meanwhile.
std::shared_ptr<ModelLease> acquire_model(ServerState& st, const nlohmann::ordered_json& body,
                                          const httplib::Request& req);
// Standard base64 of n bytes (embeddings' "encoding_format": "base64").
std::string base64(const unsigned char* data, size_t n);
// /v1/embeddings and the /v1/models entry of the sentence-embedding model (routes_embed.cpp).
void embed_sentences(ServerState& st, const nlohmann::ordered_json& body, httplib::Response& res);
nlohmann::ordered_json embedding_model_json(const ServerState& st);
// /v1/audio/transcriptions and the /v1/models entry of the speech model (routes_audio.cpp).
inline constexpr const char* kTranscriptionsPath = "/v1/audio/transcriptions";
nlohmann::ordered_json asr_model_json(const ServerState& st);
inline std::string no_asr_model_message() {
  return "this server has no speech-recognition model: start it with --asr-model WHISPER.gguf (`edgellm convert` "
         "makes one from scripts/fetch-models whisper-tiny)";
}

void register_generate_routes(ServerState& st);
void register_misc_routes(ServerState& st);
void register_web_routes(ServerState& st);
void register_slot_routes(ServerState& st);
void register_audio_routes(ServerState& st);
void register_finetune_routes(ServerState& st);
// Where fine-tuning jobs write their adapters: a folder of this process under the temp directory.
std::string default_finetune_dir();

}  // namespace edgellm::server
