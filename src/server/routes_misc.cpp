// GET /v1/models, POST /v1/embeddings, GET /health, GET /metrics.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "server/api_error.h"
#include "server/local_job.h"
#include "server/peer_watch.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace edgellm::server {

std::string base64(const unsigned char* data, size_t n) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = data[i], b1 = i + 1 < n ? data[i + 1] : 0, b2 = i + 2 < n ? data[i + 2] : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    out += i + 2 < n ? tbl[v & 63] : '=';
  }
  return out;
}

namespace {

using ojson = nlohmann::ordered_json;

// One served model as OpenAI lists it, with its state ("loaded", "loading", "unloaded") in
// llama-server's router shape, "status": {"value": ...}, and edgellm's settings in "meta".
ojson model_json(const ServerState& st, const ModelPool::Status& m) {
  const ModelSpec& s = *m.spec;
  ojson meta = {{"n_ctx", s.n_ctx}, {"n_parallel", s.n_parallel}, {"mem_bytes", s.mem_bytes}};
  if (m.state == "loaded") {
    meta["n_vocab"] = m.n_vocab;
    meta["n_embd"] = m.n_embd;
    meta["n_layer"] = m.n_layer;
  }
  ojson status = {{"value", m.state}};
  if (!s.unfit.empty()) status["error"] = "does not fit in the memory budget: " + s.unfit;
  ojson j = {{"id", s.name}, {"object", "model"}, {"created", m.loaded_at}, {"owned_by", "edgellm"},
             {"status", status}, {"meta", meta}};
  if (st.orch) {
    // Lets the web page offer "ask the cloud"; no endpoint URL (it may name internal hosts).
    const auto& p = st.orch->policy();
    j["meta"]["routing"] = {{"policy", p.name}, {"mode", hybrid::mode_name(p.mode)}, {"cloud", p.cloud.configured()}};
  }
  return j;
}

// Runs every input as an embedding job and returns their outcomes in order. Inputs are
// submitted as the request's own jobs finish, at most one per slot at a time: a list longer
// than slots + queue (the API allows 256) needs no queue room for all of it, and it does not
// crowd other clients out of the queue. 429 only when not one input can be queued (a full
// server); a client that hangs up cancels the rest.
std::vector<runtime::JobOutcome> run_embedding_jobs(ServerState& st, const ModelLease& model, const httplib::Request& req,
                                                    const std::vector<std::vector<int32_t>>& inputs) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<runtime::JobOutcome> out;
    size_t done = 0;
    bool failed = false;
  };
  auto sh = std::make_shared<Shared>();
  sh->out.resize(inputs.size());
  std::vector<std::shared_ptr<runtime::Job>> jobs;
  auto cancel_and_drain = [&] {
    for (auto& j : jobs) j->cancel();
    // Wait for the cancelled ones: on_done always runs, and then nothing outlives this request.
    std::unique_lock<std::mutex> lk(sh->mu);
    sh->cv.wait(lk, [&] { return sh->done == jobs.size(); });
  };
  const PeerWatch peer(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
  const size_t window = static_cast<size_t>(std::max(1, model.spec().n_parallel));
  size_t next = 0;
  for (;;) {
    size_t done = 0;
    {
      std::lock_guard<std::mutex> lk(sh->mu);
      done = sh->done;
    }
    while (next < inputs.size() && jobs.size() - done < window) {
      runtime::JobRequest jr;
      jr.prompt = inputs[next];
      jr.embedding = true;
      {
        std::shared_lock<std::shared_mutex> lk(model.model().lora_mu);
        for (const auto& e : model.model().lora.entries)
          if (e.scale != 0.0f) jr.lora.entries.push_back(e);  // registered fine-tunes (scale 0) stay off
      }
      jr.on_done = [sh, i = next, &st](runtime::JobOutcome& o) {
        st.metrics.generation(o.result.n_prompt, 0, 0, o.queue_seconds, 0);
        std::lock_guard<std::mutex> lk(sh->mu);
        if (!o.error.empty() || o.embedding.empty()) sh->failed = true;
        sh->out[i] = std::move(o);
        ++sh->done;
        sh->cv.notify_all();
      };
      std::shared_ptr<runtime::Job> job;
      try {
        job = model.model().sched->submit(std::move(jr));
      } catch (const InvalidArgument& e) {
        cancel_and_drain();
        throw ApiError(400, e.what(), "input");
      }
      if (!job) {
        if (jobs.size() - done > 0) break;  // ours still run: retry when one of them ends
        cancel_and_drain();
        st.metrics.rejected();
        throw ApiError(429, "The server is busy; retry shortly.", "", "rate_limit_exceeded");
      }
      jobs.push_back(std::move(job));
      ++next;
    }
    bool all_done = false, failed = false;
    {
      std::unique_lock<std::mutex> lk(sh->mu);
      // Wakes when one of ours ends (room to submit the next), or to look at the client.
      sh->cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return sh->done > done || sh->failed; });
      all_done = next == inputs.size() && sh->done == jobs.size();
      failed = sh->failed;
    }
    if (all_done) break;
    if (failed) break;  // the rest is pointless: reported below
    if (!peer.alive()) {
      cancel_and_drain();
      throw ClientGone();
    }
  }
  cancel_and_drain();  // no-op when all finished; stops the rest after a failure
  // Report the error that stopped the request, not the cancellations it caused.
  const runtime::JobOutcome* bad = nullptr;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& o = sh->out[i];
    if (!o.error.empty()) {
      bad = &o;
      break;
    }
    if (o.embedding.empty() && !bad) bad = &o;
  }
  if (bad || jobs.size() < inputs.size())
    throw ApiError(bad && bad->client_error ? 400 : 500,
                   "embedding failed: " + (!bad ? std::string("not run") : bad->error.empty() ? bad->result.finish_reason : bad->error));
  return std::move(sh->out);
}

void embeddings(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  const ojson body = parse_body(req.body);
  if (st.opts.embedder) return embed_sentences(st, body, res);
  if (!st.opts.chat_embeddings)
    throw ApiError(400, "this server has no sentence-embedding model: start it with --embedding-model FILE (a BERT "
                        "GGUF, `edgellm convert` makes one); --chat-embeddings serves the chat model's mean hidden "
                        "state instead, which is not a sentence embedding", "model", "embeddings_not_enabled");
  // --chat-embeddings: the mean hidden state of the chat model the request names (its lease).
  const auto lease = acquire_model(st, body, req);
  const auto inputs = parse_embedding_input(body, lease->model().gctx);
  const bool b64 = body.contains("encoding_format") && body["encoding_format"] == "base64";
  std::vector<runtime::JobOutcome> outcomes;
  try {
    outcomes = run_embedding_jobs(st, *lease, req, inputs);
  } catch (const ClientGone& e) {
    send_error(res, 499, e.what(), "", "client_closed_request");  // nobody reads it; logs do
    return;
  }
  ojson data = ojson::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto& o = outcomes[i];
    // Unit length, like OpenAI's embeddings, so a dot product is the cosine similarity.
    double norm = 0;
    for (float v : o.embedding) norm += static_cast<double>(v) * v;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (float& v : o.embedding) v = static_cast<float>(v / norm);
    n_tokens += static_cast<int64_t>(inputs[i].size());
    ojson item = {{"object", "embedding"}, {"index", i}};
    if (b64) {
      static_assert(sizeof(float) == 4);
      std::vector<unsigned char> bytes(o.embedding.size() * 4);
      std::memcpy(bytes.data(), o.embedding.data(), bytes.size());  // little-endian hosts
      item["embedding"] = base64(bytes.data(), bytes.size());
    } else {
      item["embedding"] = o.embedding;
    }
    data.push_back(std::move(item));
  }
  send_json(res, {{"object", "list"}, {"data", data}, {"model", lease->name()},
                  {"usage", {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}}}});
  st.metrics.latency("/v1/embeddings", std::chrono::duration<double>(Clock::now() - t0).count());
}

}  // namespace

void answer_guarded(const httplib::Request& req, httplib::Response& res,
                    const std::function<void(const httplib::Request&, httplib::Response&)>& f) {
  try {
    f(req, res);
  } catch (const ApiError& e) {
    send_json(res, e.body(), e.status);
  } catch (const InvalidArgument& e) {
    send_error(res, 400, e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, std::string("internal error: ") + e.what());
  }
}

void register_misc_routes(ServerState& st) {
  auto& http = st.http;
  http.Get("/v1/models", guarded([&st](const httplib::Request&, httplib::Response& res) {
             ojson data = ojson::array();
             for (const auto& m : st.pool->status()) data.push_back(model_json(st, m));
             if (st.opts.embedder) data.push_back(embedding_model_json(st));
             if (st.opts.asr_model) data.push_back(asr_model_json(st));
             send_json(res, {{"object", "list"}, {"data", data}});
           }));
  http.Get(R"(/v1/models/(.+))", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const std::string id = req.matches[1];
             if (st.opts.embedder && id == st.opts.embedding_model_id) return send_json(res, embedding_model_json(st));
             if (st.opts.asr_model && id == st.opts.asr_model_id) return send_json(res, asr_model_json(st));
             for (const auto& m : st.pool->status())
               if (m.spec->name == id) return send_json(res, model_json(st, m));
             throw ApiError(404, "The model '" + id + "' does not exist", "model", "model_not_found");
           }));
  auto emb = guarded([&st](const httplib::Request& req, httplib::Response& res) { embeddings(st, req, res); });
  http.Post("/v1/embeddings", emb);
  http.Post("/embeddings", emb);
  // The adapters loaded at start (serve --lora, with one model), as llama-server lists them: a
  // request's "lora" field names them by id.
  http.Get("/lora-adapters", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const auto lease = st.pool->acquire(req.get_param_value("model"));
             std::shared_lock<std::shared_mutex> lk(lease->model().lora_mu);
             const auto& lora = lease->model().lora;
             ojson list = ojson::array();
             for (size_t i = 0; i < lora.entries.size(); ++i) {
               const auto& e = lora.entries[i];
               list.push_back({{"id", i}, {"name", e.adapter->info().name}, {"path", e.adapter->path()}, {"scale", e.scale},
                               {"rank", e.adapter->info().rank_max}, {"alpha", e.adapter->info().alpha}});
             }
             send_json(res, list);
           }));
  http.Get("/health", guarded([&st](const httplib::Request&, httplib::Response& res) {
             const auto s = st.pool->stats();
             send_json(res, {{"status", "ok"}, {"model", st.pool->specs().front().name}, {"slots_idle", s.n_slots - s.active},
                             {"slots_processing", s.active}, {"queued", s.queued}});
           }));
  http.Get("/metrics", guarded([&st](const httplib::Request&, httplib::Response& res) {
             res.set_content(st.metrics.render(st.pool->stats()), "text/plain; version=0.0.4; charset=utf-8");
           }));
}

}  // namespace edgellm::server
