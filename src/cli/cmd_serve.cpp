// edgellm serve: the OpenAI-compatible HTTP API and web chat page.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <pthread.h>
#include <thread>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "cli/mem_flags.h"
#include "server/server.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct ServeArgs {
  std::string model, embedding_model;
  int32_t threads = 0;
  server::ServerOptions opts;
  HybridFlags hybrid;
  KvTypeFlags kv;
  std::string mem_budget;
  LoraFlags lora;
};

void serve(ServeArgs a) {
  // SIGINT / SIGTERM are taken by a waiting thread (blocked everywhere else) so shutdown runs
  // as ordinary code, not in a signal handler. SIGPIPE from a vanished client is ignored.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  apply_mem_budget(a.mem_budget, a.model, a.opts.n_ctx, &a.opts.n_parallel, a.kv, a.opts.n_batch, a.threads);
  a.opts.kv_types = kv_types(a.kv);
  a.opts.policy = make_policy(a.hybrid);  // a bad policy stops start-up with its message
  const auto lora_specs = parse_lora_specs(a.lora);
  const std::string path = resolve_model(a.model);
  auto engine = runtime::Engine::load(path, {a.threads});
  a.opts.lora = load_lora(lora_specs, engine->model());
  if (a.opts.model_id.empty()) a.opts.model_id = std::filesystem::path(path).stem().string();
  if (!a.embedding_model.empty()) {
    const std::string epath = resolve_model(a.embedding_model);
    a.opts.embedder = runtime::Embedder::load(epath, a.threads);
    a.opts.embedding_model_id = std::filesystem::path(epath).stem().string();
    if (a.opts.embedding_model_id == a.opts.model_id) a.opts.embedding_model_id += "-embedding";
    std::fprintf(stderr, "edgellm serve: embeddings from %s (%d dims, up to %d tokens per input)\n",
                 a.opts.embedding_model_id.c_str(), a.opts.embedder->dim(), a.opts.embedder->max_tokens());
  }
  server::Server srv(*engine, a.opts);
  const int port = srv.bind();
  std::fprintf(stderr, "edgellm serve: model %s, %d slots x %d tokens, listening on http://%s:%d\n",
               a.opts.model_id.c_str(), a.opts.n_parallel, a.opts.n_ctx, a.opts.host.c_str(), port);
  std::fprintf(stderr, "edgellm serve: KV cache keys %s, values %s: %.1f KiB per token\n",
               model::kv_type_name(a.opts.kv_types.k).c_str(), model::kv_type_name(a.opts.kv_types.v).c_str(),
               model::kv_bytes_per_token(engine->config(), a.opts.kv_types) / 1024.0);
  if (a.opts.host != "127.0.0.1" && a.opts.host != "localhost" && a.opts.host != "::1" && a.opts.api_key.empty())
    std::fprintf(stderr, "warning: listening beyond loopback without --api-key\n");
  if (a.opts.policy)
    std::fprintf(stderr, "edgellm serve: hybrid routing '%s' (%s), cloud %s\n", a.opts.policy->name.c_str(),
                 hybrid::mode_name(a.opts.policy->mode),
                 a.opts.policy->cloud.configured() ? a.opts.policy->cloud.base_url.c_str() : "not configured");
  std::fflush(stderr);

  std::thread waiter([&srv, set] {
    int sig = 0;
    sigwait(&set, &sig);
    srv.stop();
  });
  const bool ok = srv.listen();
  // Wake the waiter if the listener ended on its own.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::fprintf(stderr, "edgellm serve: stopped\n");
  if (!ok) throw Error("the HTTP listener failed");
}

Registrar reg("serve", "Serve an OpenAI-compatible API and a web chat page", [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto& o = a->opts;
  app.add_option("-m,--model", a->model, "GGUF model (default: the cached default model)");
  app.add_option("--host", o.host, "Address to bind (loopback by default)")->capture_default_str();
  app.add_option("--port", o.port, "TCP port (0 = any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("-c,--ctx-size", o.n_ctx, "Context size of each slot, in tokens")->capture_default_str();
  app.add_option("-P,--parallel", o.n_parallel, "Sequences decoded together (slots)")->capture_default_str();
  app.add_option("--queue", o.n_queue, "Requests that may wait for a slot; more get 429")->capture_default_str();
  app.add_option("-b,--batch", o.n_batch, "Max tokens per forward pass")->capture_default_str();
  app.add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' (all routes but /health and the page)");
  app.add_option("--max-body", o.max_body, "Largest request body in bytes")->capture_default_str();
  app.add_option("--http-threads", o.http_threads, "Connections served at once (one thread each); more wait")
      ->capture_default_str();
  app.add_option("--idle-timeout", o.idle_timeout_s, "Seconds a connection may wait idle for its next request")
      ->capture_default_str();
  app.add_option("--header-timeout", o.header_timeout_s, "Seconds a request's line and headers may take to arrive")
      ->capture_default_str();
  app.add_option("--alias", o.model_id, "Model name reported to and expected from clients (default: file stem)");
  app.add_option("--embedding-model", a->embedding_model,
                 "Sentence-embedding model (BERT GGUF) answering /v1/embeddings beside the chat model");
  app.add_flag("--chat-embeddings", o.chat_embeddings,
               "Without --embedding-model, answer /v1/embeddings with the chat model's mean hidden state "
               "(not a sentence embedding; refused otherwise)");
  app.add_option("--web-dir", o.web_dir, "Serve the chat page from this directory instead of the built-in copy");
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)")->capture_default_str();
  app.add_option("--prompt-cache", o.prompt_cache_dir,
                 "Folder of saved prompt KV states: a long prompt (system prompt, document) is computed once, "
                 "also across restarts");
  app.add_option("--slot-save-path", o.slot_save_path,
                 "Folder where POST /slots/{id}?action=save|restore keeps slots' KV states (off without it)");
  app.add_option("--prompt-cache-min", o.prompt_cache_min, "Prompt tokens a request must compute to be saved there")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  add_hybrid_flags(app, a->hybrid);
  add_kv_type_flags(app, a->kv);
  add_mem_budget_flag(app, a->mem_budget);
  add_lora_flags(app, a->lora);
  app.callback([a] { serve(*a); });
});

}  // namespace
}  // namespace edgellm::cli
