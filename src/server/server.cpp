#include "server/server.h"

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "server/api_error.h"
#include "server/grammar_constraint.h"
#include "server/http_framing.h"
#include "server/peer_watch.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

// Keeps the metrics' route label set small and fixed.
std::string route_label(const std::string& path) {
  static const char* known[] = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
                                "/health", "/metrics", "/", kTranscriptionsPath};
  for (const char* k : known)
    if (path == k) return k;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(1, b.size())]);
  return diff == 0;
}

// The page and its assets carry no data, so a browser can load them without a key; the API
// calls it makes send the key the user typed in.
bool needs_auth(const httplib::Request& req) {
  if (req.path == "/health") return false;
  if (req.method == "GET" && req.path.rfind("/v1/", 0) != 0 && req.path != "/metrics") return false;
  return true;
}

// Audio uploads have their own, larger limit (ServerOptions::max_audio_body).
size_t body_limit(const ServerState& st, const httplib::Request& req) {
  return st.opts.asr_model && req.path == kTranscriptionsPath ? st.opts.max_audio_body : st.opts.max_body;
}

}  // namespace

void send_json(httplib::Response& res, const nlohmann::ordered_json& j, int status) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param,
                const std::string& code) {
  ApiError e(status, message, param, code);
  res.status = status;
  res.set_content(e.body().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

namespace {

// A loaded model: engine and adapters from the spec's load function, the request context, and a
// scheduler with the server's settings and the spec's context, slots and KV types.
std::unique_ptr<HostedModel> host_model(const ModelSpec& spec, const ServerOptions& opts) {
  auto h = std::make_unique<HostedModel>();
  LoadedParts parts = spec.load();
  h->engine = std::move(parts.engine);
  h->lora = std::move(parts.lora);
  h->draft = std::move(parts.draft);
  h->loaded_at = static_cast<int64_t>(std::time(nullptr));
  const runtime::Engine& engine = *h->engine;
  auto& g = h->gctx;
  g.engine = &engine;
  g.model_id = spec.name;
  g.model_aliases = spec.aliases;
  g.n_ctx = spec.n_ctx;
  g.max_n = opts.max_n;
  g.adapters = &h->lora;
  g.adapters_mu = &h->lora_mu;
  g.context_shift = opts.context_shift;
  g.has_draft = h->draft != nullptr;
  const auto tmpl = engine.model().file().get_string("tokenizer.chat_template");
  g.template_renders_tools = tmpl && tmpl->find("tools") != std::string::npos;
  g.trie = make_token_trie(engine.tokenizer());
  runtime::SchedulerOptions so;
  so.n_slots = spec.n_parallel;
  so.n_ctx = spec.n_ctx;
  so.max_queue = opts.n_queue;
  so.n_batch = opts.n_batch;
  so.kv_types = spec.kv_types;
  so.prompt_cache_dir = opts.prompt_cache_dir;
  so.prompt_cache_min_tokens = opts.prompt_cache_min;
  so.context_shift = opts.context_shift;
  so.speculation = opts.speculation == runtime::SpecMode::kDraft && !h->draft ? runtime::SpecMode::kOff : opts.speculation;
  so.draft_max = opts.draft_max;
  so.draft = h->draft;
  so.draft_head_rows = opts.draft_head_rows;
  so.draft_min_confidence = opts.draft_min_confidence;
  so.learn_draft_cost = opts.learn_draft_cost;
  h->sched = std::make_unique<runtime::Scheduler>(engine, so);
  return h;
}

}  // namespace

std::shared_ptr<ModelLease> acquire_model(ServerState& st, const nlohmann::ordered_json& body,
                                          const httplib::Request& req) {
  std::string name;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) throw ApiError(400, "\"model\" must be a string", "model", "invalid_type");
    name = body["model"].get<std::string>();
  }
  // Found only if the wait is long (a load, or other models' requests finishing).
  std::unique_ptr<PeerWatch> peer;
  return st.pool->acquire(name, [&] {
    if (!peer) peer = std::make_unique<PeerWatch>(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
    return peer->alive();
  });
}

Server::Server(std::vector<ModelSpec> models, const ServerOptions& opts) : st_(std::make_unique<ServerState>()) {
  auto& st = *st_;
  st.opts = opts;
  st.created = static_cast<int64_t>(std::time(nullptr));
  for (const auto& m : models) {
    if (m.n_parallel < 1 || m.n_parallel > 64) throw InvalidArgument("--parallel must be between 1 and 64");
    if (m.n_ctx < 16) throw InvalidArgument("-c must be at least 16 tokens");
  }
  if (opts.n_queue < 0) throw InvalidArgument("--queue must not be negative");
  if (opts.max_body < 1024) throw InvalidArgument("--max-body must be at least 1024 bytes");
  if (opts.max_audio_body < 1024) throw InvalidArgument("--max-audio-body must be at least 1024 bytes");
  if (opts.http_threads < 16 || opts.http_threads > 65536)
    throw InvalidArgument("--http-threads must be between 16 and 65536");
  if (opts.idle_timeout_s < 1 || opts.idle_timeout_s > 3600) throw InvalidArgument("--idle-timeout must be 1-3600 s");
  if (opts.header_timeout_s < 1 || opts.header_timeout_s > 3600)
    throw InvalidArgument("--header-timeout must be 1-3600 s");
  if (opts.policy && models.size() > 1)
    throw InvalidArgument("hybrid routing (--policy / --cloud) serves one local model; give a single -m");
  if (!opts.slot_save_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opts.slot_save_path, ec);
    if (!std::filesystem::is_directory(opts.slot_save_path, ec))
      throw Error("--slot-save-path " + opts.slot_save_path + " is not a folder that can be created");
  }
  const ServerOptions* o = &st.opts;
  st.pool = std::make_unique<ModelPool>(std::move(models), opts.mem_budget, opts.models_max,
                                        [o](const ModelSpec& s) { return host_model(s, *o); });
  const auto& first = st.pool->specs().front();
  if (first.unfit.empty()) {
    // Loaded now so a bad file stops start-up, as with one model.
    try {
      st.pool->acquire(first.name);
    } catch (const ApiError& e) {
      throw Error(e.message);
    }
  }
  if (opts.policy) {
    // The policy's local limits override what the server knows about its model.
    hybrid::LocalInfo li;
    li.n_ctx = opts.policy->local.n_ctx > 0 ? opts.policy->local.n_ctx : first.n_ctx;
    bool renders_tools = false;
    if (auto lease = st.pool->acquire(first.name)) renders_tools = lease->model().gctx.template_renders_tools;
    li.supports_tools = opts.policy->local.supports_tools.value_or(renders_tools);
    st.orch = std::make_unique<hybrid::Orchestrator>(*opts.policy, li);
  }

  auto& http = st.http;
  HttpLimits lim;
  lim.max_threads = static_cast<size_t>(opts.http_threads);
  lim.idle_timeout_ms = opts.idle_timeout_s * 1000;
  lim.head_timeout_ms = opts.header_timeout_s * 1000;
  http.set_limits(lim);
  http.set_payload_max_length(opts.asr_model ? std::max(opts.max_body, opts.max_audio_body) : opts.max_body);
  if (opts.asr_model) st.asr = std::make_unique<AsrWorker>(opts.asr_threads, std::max(1, opts.n_queue));

  // Framing is checked on the headers, before any body byte is read: a refused request's body
  // is never waited for, and the connection closes after the answer.
  http.set_expect_100_continue_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (const auto v = check_framing(req.method, req.headers, body_limit(st, req))) {
      send_error(res, v.status, v.message, "", v.code);
      // httplib writes this answer without the step that adds Content-Length.
      res.set_header("Content-Length", std::to_string(res.body.size()));
      close_connection_after_response();
      return v.status;
    }
    return 100;
  });
  http.set_pre_routing_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (const auto v = check_framing(req.method, req.headers, body_limit(st, req))) {
      send_error(res, v.status, v.message, "", v.code);
      close_connection_after_response();
      return httplib::Server::HandlerResponse::Handled;
    }
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (st.opts.api_key.empty() || !needs_auth(req) ||
        (auth.rfind(prefix, 0) == 0 && constant_time_equal(auth.substr(prefix.size()), st.opts.api_key))) {
      if (!st.opts.asr_model && req.path == kTranscriptionsPath && req.method == "POST") {
        // Said before the upload is read, whatever its size.
        send_error(res, 400, no_asr_model_message(), "model", "transcription_not_enabled");
        close_connection_after_response();
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }
    send_error(res, 401, auth.empty() ? "Missing API key: send it as 'Authorization: Bearer <key>'"
                                      : "Incorrect API key provided", "", "invalid_api_key");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors httplib produces on its own (404 route, 413 body too large, 400 bad request line)
  // get an OpenAI-style body too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([&st](const httplib::Request& req,
                                                                     httplib::Response& res) {
    if (!res.body.empty() || res.content_provider_) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg;
    std::string code;
    switch (res.status) {
      case 400: msg = "Malformed HTTP request (request line, headers or body framing)"; break;
      case 404: msg = "Unknown route: " + req.method + " " + req.path; code = "not_found"; break;
      case 405: msg = "Method not allowed on " + req.path; break;
      case 413: msg = "The request body is larger than the limit of " + std::to_string(st.opts.max_body) + " bytes";
                code = "request_too_large"; break;
      default: msg = "HTTP error " + std::to_string(res.status); break;
    }
    send_error(res, res.status, msg, "", code);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    send_error(res, 500, msg);
  });
  http.set_logger([&st](const httplib::Request& req, const httplib::Response& res) {
    st.metrics.request(route_label(req.path), res.status);
  });

  register_generate_routes(st);
  register_misc_routes(st);
  register_slot_routes(st);
  st.finetune = opts.finetune_dir.empty()
                    ? std::make_unique<FineTuning>(st, default_finetune_dir(), /*remove_dir=*/true)
                    : std::make_unique<FineTuning>(st, opts.finetune_dir, /*remove_dir=*/false);
  register_finetune_routes(st);
  register_web_routes(st);
  register_audio_routes(st);
}

Server::~Server() {
  stop();
  st_->finetune.reset();  // cancels a running job, which holds a lease of its model
  st_->pool.reset();  // finishes pending jobs so no handler waits forever
}

int Server::bind() {
  auto& http = st_->http;
  int port = st_->opts.port;
  if (port == 0) {
    port = http.bind_to_any_port(st_->opts.host.c_str());
    if (port < 0) throw Error("cannot bind " + st_->opts.host + " to any port");
  } else if (!http.bind_to_port(st_->opts.host.c_str(), port)) {
    throw Error("cannot listen on " + st_->opts.host + ":" + std::to_string(port) +
                " (address in use or not available); pick another --port or --host");
  }
  http.widen_backlog(1024);
  return port;
}

bool Server::listen() { return st_->http.listen_after_bind(); }

void Server::stop() { st_->http.stop(); }

}  // namespace edgellm::server
