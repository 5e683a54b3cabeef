// edgellm serve: the OpenAI-compatible HTTP API and web chat page.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <pthread.h>
#include <thread>
#include <utility>
#include <vector>

#include "asr/whisper.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "cli/mem_flags.h"
#include "cli/models.h"
#include "cli/models_preset.h"
#include "io/gguf.h"
#include "cli/draft_flags.h"
#include "runtime/draft_model.h"
#include "server/server.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> models;  // -m PATH or NAME=PATH, repeatable
  std::string preset;               // --models-preset FILE
  std::string alias;
  std::string embedding_model;      // --embedding-model FILE
  std::string asr_model;            // --asr-model FILE or whisper-tiny / whisper-base
  int32_t n_ctx = 4096, n_parallel = 4;
  const CLI::Option *ctx_opt = nullptr, *parallel_opt = nullptr;
  int32_t threads = 0;
  server::ServerOptions opts;
  HybridFlags hybrid;
  KvTypeFlags kv;
  std::string mem_budget;
  LoraFlags lora;
  std::string draft;  // --draft MODEL: speculation with this draft model by default
  bool lookup = false;  // --lookup: speculation with prompt lookup by default
  DraftSpeed draft_speed;  // --draft-vocab, --draft-p-min (the draft model's, as on run)
};

// "NAME=PATH" names a model; a plain PATH (or short name) is named by its file's stem. A file
// that exists under the whole text wins over the split.
std::pair<std::string, std::string> split_named(const std::string& v) {
  const auto eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || file_exists(v) || v.substr(0, eq).find('/') != std::string::npos)
    return {"", v};
  return {v.substr(0, eq), v.substr(eq + 1)};
}

// Same token list (what DraftModelProposer::load_draft checks after loading), read from the files'
// metadata so a model the draft cannot serve is known before anything is loaded. Files without a
// token list are left to that check.
bool shares_vocabulary(const std::string& model, const std::string& draft) {
  const auto a = io::GgufFile::open(model), b = io::GgufFile::open(draft);
  const auto* ta = a->get_string_array("tokenizer.ggml.tokens");
  const auto* tb = b->get_string_array("tokenizer.ggml.tokens");
  return !ta || !tb || *ta == *tb;
}

std::vector<server::ModelSpec> model_specs(ServeArgs& a) {
  std::vector<PresetModel> list;
  for (const auto& v : a.models) {
    auto [name, model] = split_named(v);
    list.push_back({name, model, {}, {}, {}, {}});
  }
  if (!a.preset.empty())
    for (auto& m : read_models_preset(a.preset)) list.push_back(std::move(m));
  if (list.empty()) list.push_back({});  // the default model
  const bool several = list.size() > 1;
  if (several && !a.alias.empty()) throw InvalidArgument("--alias names one model; name several with -m NAME=PATH");
  if (several && !a.lora.specs.empty())
    throw InvalidArgument("--lora applies to one model's weights; serve adapters with a single -m");
  const auto lora_specs = parse_lora_specs(a.lora);
  if (a.lookup && !a.draft.empty()) throw InvalidArgument("--lookup and --draft are two proposers; choose one");
  const std::string draft = a.draft.empty() ? "" : resolve_model(a.draft);
  std::vector<server::ModelSpec> specs;
  for (const auto& m : list) {
    server::ModelSpec s;
    s.path = resolve_model(m.model);
    s.name = !m.name.empty() ? m.name : !a.alias.empty() ? a.alias : std::filesystem::path(s.path).stem().string();
    // A model picked by its short name answers to it too (served under the file's stem, as before).
    if (m.name.empty() && a.alias.empty() && find_known_model(m.model) && m.model != s.name)
      s.aliases.push_back(m.model);
    // Flags on the command line win over the preset, as in llama-server.
    s.n_ctx = a.ctx_opt->count() > 0 ? a.n_ctx : m.n_ctx.value_or(a.n_ctx);
    s.n_parallel = a.parallel_opt->count() > 0 ? a.n_parallel : m.n_parallel.value_or(a.n_parallel);
    KvTypeFlags kv = a.kv;
    if (!a.kv.set() && (m.cache_type_k || m.cache_type_v)) {
      kv.k = m.cache_type_k.value_or(kv.k);
      kv.v = m.cache_type_v.value_or(kv.v);
      kv.given = true;
    }
    if (several) std::fprintf(stderr, "edgellm serve: model %s: %s\n", s.name.c_str(), s.path.c_str());
    // A server-wide --draft speeds up the models that share its vocabulary; with several models
    // the others are served without it instead of failing to load on their first request.
    std::string model_draft = draft;
    if (several && !draft.empty() && !shares_vocabulary(s.path, draft)) {
      std::fprintf(stderr, "edgellm serve: model %s: no speculative decoding: the draft %s has another vocabulary\n",
                   s.name.c_str(), draft.c_str());
      model_draft.clear();
    }
    try {
      s.mem_bytes =
          apply_mem_budget(a.mem_budget, s.path, s.n_ctx, &s.n_parallel, kv, a.opts.n_batch, a.threads, model_draft);
    } catch (const InvalidArgument& e) {
      if (!several) throw;
      // The others still serve; requests for this one get the reason.
      s.unfit = e.what();
      std::fprintf(stderr, "warning: model %s does not fit in --mem-budget even alone: %s\n", s.name.c_str(), e.what());
    }
    s.kv_types = kv_types(kv);
    if (a.mem_budget.empty())
      s.mem_bytes = mem_breakdown(s.path, s.n_ctx, s.n_parallel, s.kv_types, a.opts.n_batch, a.threads).total();
    // The draft model comes with each model (its weights, and a cache per slot in the default types);
    // a budgeted total already counts it.
    if (!model_draft.empty() && a.mem_budget.empty())
      s.mem_bytes += mem_breakdown(model_draft, s.n_ctx, s.n_parallel, {}, a.opts.n_batch, a.threads).total();
    const std::string path = s.path;
    const int32_t threads = a.threads;
    s.load = [path, threads, lora_specs, draft = model_draft] {
      server::LoadedParts p;
      p.engine = runtime::Engine::load(path, {threads});
      p.lora = load_lora(lora_specs, p.engine->model());
      if (!draft.empty()) p.draft = runtime::DraftModelProposer::load_draft(*p.engine, draft);
      return p;
    };
    specs.push_back(std::move(s));
  }
  return specs;
}

// --asr-model: a Whisper GGUF, or a name (whisper-tiny) for <model cache>/NAME.gguf. The cache
// holds CTranslate2 folders (scripts/fetch-models); a missing GGUF is named with the command that
// makes it rather than converted behind the user's back.
std::string resolve_asr_model(const std::string& v) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(v, ec)) return v;
  if (std::filesystem::is_directory(v, ec))
    throw InvalidArgument("--asr-model " + v + " is a folder; convert a CTranslate2 Whisper folder first: edgellm "
                          "convert " + v + " whisper.gguf");
  if (v.find('/') == std::string::npos && v.rfind("whisper-", 0) == 0) {
    const auto dir = std::filesystem::path(model_dir());
    const auto gguf = dir / (v + ".gguf");
    if (std::filesystem::is_regular_file(gguf, ec)) return gguf.string();
    const auto ct2 = dir / (v + "-ct2");
    throw InvalidArgument("--asr-model " + v + ": " + gguf.string() + " is absent; make it with: " +
                          (std::filesystem::is_directory(ct2, ec) ? "" : "scripts/fetch-models " + v + " && ") +
                          "edgellm convert " + ct2.string() + " " + gguf.string());
  }
  throw InvalidArgument("--asr-model " + v + ": no such file (a Whisper GGUF from `edgellm convert`, or "
                        "whisper-tiny / whisper-base for <model cache>/NAME.gguf)");
}

void serve(ServeArgs a) {
  // SIGINT / SIGTERM are taken by a waiting thread (blocked everywhere else) so shutdown runs
  // as ordinary code, not in a signal handler. SIGPIPE from a vanished client is ignored.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  a.opts.policy = make_policy(a.hybrid);  // a bad policy stops start-up with its message
  if (a.lookup) a.opts.speculation = runtime::SpecMode::kLookup;
  if (!a.draft.empty()) a.opts.speculation = runtime::SpecMode::kDraft;
  if (a.draft_speed.vocab >= 0) a.opts.draft_head_rows = a.draft_speed.vocab;
  if (a.draft_speed.p_min >= 0) a.opts.draft_min_confidence = a.draft_speed.p_min;
  if (!a.mem_budget.empty())
    a.opts.mem_budget = runtime::parse_mem_size(a.mem_budget, runtime::physical_ram_bytes());
  auto specs = model_specs(a);
  std::vector<std::string> lines;
  for (const auto& s : specs)
    lines.push_back(s.name + ": " + std::to_string(s.n_parallel) + " slots x " + std::to_string(s.n_ctx) +
                    " tokens, KV cache " + model::kv_type_name(s.kv_types.k) + "/" + model::kv_type_name(s.kv_types.v) +
                    ", " + runtime::format_bytes(s.mem_bytes));
  if (!a.embedding_model.empty()) {
    // Always loaded, outside the pool and its budget (a BERT is small); named apart from every chat model.
    const std::string epath = resolve_model(a.embedding_model);
    a.opts.embedder = runtime::Embedder::load(epath, a.threads);
    a.opts.embedding_model_id = std::filesystem::path(epath).stem().string();
    for (const auto& s : specs)
      if (s.name == a.opts.embedding_model_id) a.opts.embedding_model_id += "-embedding";
    std::fprintf(stderr, "edgellm serve: embeddings from %s (%d dims, up to %d tokens per input)\n",
                 a.opts.embedding_model_id.c_str(), a.opts.embedder->dim(), a.opts.embedder->max_tokens());
  }
  if (!a.asr_model.empty()) {
    // Always loaded, outside the pool and its budget, as the embedding model.
    const std::string apath = resolve_asr_model(a.asr_model);
    a.opts.asr_model = asr::WhisperModel::load(apath);
    a.opts.asr_model_id = std::filesystem::path(apath).stem().string();
    for (const auto& s : specs)
      if (s.name == a.opts.asr_model_id) a.opts.asr_model_id += "-asr";
    if (a.opts.asr_threads <= 0) a.opts.asr_threads = a.threads;
    const int n = a.opts.asr_threads > 0 ? a.opts.asr_threads : ops::ThreadPool::physical_cores();
    std::fprintf(stderr, "edgellm serve: speech to text with %s (%s, %d threads, uploads up to %s)\n",
                 a.opts.asr_model_id.c_str(), a.opts.asr_model->config().multilingual ? "multilingual" : "English",
                 n, runtime::format_bytes(a.opts.max_audio_body).c_str());
  }
  server::Server srv(std::move(specs), a.opts);
  const int port = srv.bind();
  for (const auto& l : lines) std::fprintf(stderr, "edgellm serve: model %s\n", l.c_str());
  if (a.opts.mem_budget)
    std::fprintf(stderr, "edgellm serve: loaded models stay within %s (least recently used unloaded first)\n",
                 runtime::format_bytes(a.opts.mem_budget).c_str());
  if (a.opts.speculation != runtime::SpecMode::kOff)
    std::fprintf(stderr, "edgellm serve: speculative decoding with %s, drafts of up to %d tokens%s\n",
                 a.lookup ? "prompt lookup" : a.draft.c_str(), a.opts.draft_max,
                 a.lookup ? ""
                          : (", draft vocabulary " + std::to_string(a.opts.draft_head_rows) + ", draft p-min " +
                             std::to_string(a.opts.draft_min_confidence).substr(0, 4))
                                .c_str());
  std::fprintf(stderr, "edgellm serve: listening on http://%s:%d\n", a.opts.host.c_str(), port);
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
  app.add_option("-m,--model", a->models,
                 "GGUF model: a path or short name, or NAME=PATH to serve it as NAME; repeat for several models "
                 "(chosen by the request's \"model\", loaded on first use; default: the cached default model)")
      ->allow_extra_args(false);
  app.add_option("--models-preset", a->preset,
                 "INI file of models to serve, as llama-server's router: [NAME] sections with model = FILE, "
                 "ctx-size, parallel, cache-type-k, cache-type-v");
  app.add_option("--models-max", o.models_max, "Models loaded at once; the least recently used is unloaded first "
                 "(0: no limit but --mem-budget)")->capture_default_str()->check(CLI::Range(0, 1024));
  app.add_option("--host", o.host, "Address to bind (loopback by default)")->capture_default_str();
  app.add_option("--port", o.port, "TCP port (0 = any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  a->ctx_opt = app.add_option("-c,--ctx-size", a->n_ctx, "Context size of each slot, in tokens")->capture_default_str();
  a->parallel_opt =
      app.add_option("-P,--parallel", a->n_parallel, "Sequences decoded together (slots)")->capture_default_str();
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
  app.add_option("--alias", a->alias, "Model name reported to and expected from clients (default: file stem)");
  app.add_option("--embedding-model", a->embedding_model,
                 "Sentence-embedding model (BERT GGUF) answering /v1/embeddings beside the chat models");
  app.add_option("--asr-model", a->asr_model,
                 "Whisper GGUF (or whisper-tiny / whisper-base from the model cache) answering "
                 "/v1/audio/transcriptions and the chat page's microphone");
  app.add_option("--asr-threads", o.asr_threads, "Threads of the speech model's pool (0 = -t, else physical cores)")
      ->capture_default_str();
  app.add_option("--max-audio-body", o.max_audio_body, "Largest audio upload in bytes (/v1/audio/transcriptions)")
      ->capture_default_str();
  app.add_flag("--chat-embeddings", o.chat_embeddings,
               "Without --embedding-model, answer /v1/embeddings with the chat model's mean hidden state "
               "(the model the request names; not a sentence embedding; refused otherwise)");
  app.add_option("--web-dir", o.web_dir, "Serve the chat page from this directory instead of the built-in copy");
  app.add_option("--finetune-dir", o.finetune_dir,
                 "Keep the adapters of /v1/fine_tuning/jobs in this folder (default: a temporary folder removed "
                 "when the server stops)");
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)")->capture_default_str();
  app.add_option("--prompt-cache", o.prompt_cache_dir,
                 "Folder of saved prompt KV states: a long prompt (system prompt, document) is computed once, "
                 "also across restarts");
  app.add_option("--slot-save-path", o.slot_save_path,
                 "Folder where POST /slots/{id}?action=save|restore keeps slots' KV states (off without it)");
  app.add_option("--prompt-cache-min", o.prompt_cache_min, "Prompt tokens a request must compute to be saved there")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 24));
  app.add_flag("--no-context-shift", [o = &a->opts](int64_t) { o->context_shift = false; },
               "Refuse a chat that no longer fits a slot (400) instead of dropping its oldest turns");
  app.add_flag("--lookup", a->lookup,
               "Speculative decoding with prompt-lookup drafts for every request (same greedy answers; a request's "
               "\"speculative\" field chooses otherwise)");
  app.add_option("--draft", a->draft,
                 "Draft model (name or GGUF, the served models' vocabulary), loaded with each model: requests "
                 "speculate with it unless their \"speculative\" field says otherwise");
  app.add_option("--draft-max", o.draft_max, "Longest speculative draft per pass (adapts below it per request)")
      ->capture_default_str()
      ->check(CLI::Range(0, runtime::kMaxDraftTokens));
  add_draft_speed_flags(app, a->draft_speed);
  app.add_flag("--draft-fixed-cost", [o = &a->opts](int64_t) { o->learn_draft_cost = false; },
               "Price each drafted token at a fixed share of a pass instead of learning it from pass times: "
               "draft lengths, and so the timings' draft counts, then do not depend on the machine's speed or load");
  add_hybrid_flags(app, a->hybrid);
  add_kv_type_flags(app, a->kv);
  add_mem_budget_flag(app, a->mem_budget);
  add_lora_flags(app, a->lora);
  app.callback([a] { serve(*a); });
});

}  // namespace
}  // namespace edgellm::cli
