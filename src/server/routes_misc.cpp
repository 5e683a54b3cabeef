// GET /v1/models, POST /v1/embeddings, GET /health, GET /metrics.
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "server/api_error.h"
#include "server/server_impl.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

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

ojson model_json(const ServerState& st) {
  const auto& cfg = st.engine->config();
  ojson j = {{"id", st.opts.model_id}, {"object", "model"}, {"created", st.created}, {"owned_by", "edgellm"},
             {"meta", {{"n_ctx", st.opts.n_ctx}, {"n_vocab", cfg.n_vocab}, {"n_embd", cfg.n_embd},
                       {"n_layer", cfg.n_layer}, {"n_parallel", st.opts.n_parallel}}}};
  if (st.orch) {
    // Lets the web page offer "ask the cloud"; no endpoint URL (it may name internal hosts).
    const auto& p = st.orch->policy();
    j["meta"]["routing"] = {{"policy", p.name}, {"mode", hybrid::mode_name(p.mode)}, {"cloud", p.cloud.configured()}};
  }
  return j;
}

void embeddings(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  const ojson body = parse_body(req.body);
  const auto inputs = parse_embedding_input(body, st.gctx);
  const bool b64 = body.contains("encoding_format") && body["encoding_format"] == "base64";

  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<runtime::JobOutcome> out;
    size_t done = 0;
  };
  auto sh = std::make_shared<Shared>();
  sh->out.resize(inputs.size());
  std::vector<std::shared_ptr<runtime::Job>> jobs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    runtime::JobRequest jr;
    jr.prompt = inputs[i];
    jr.embedding = true;
    jr.on_done = [sh, i, &st](runtime::JobOutcome& o) {
      st.metrics.generation(o.result.n_prompt, 0, 0, o.queue_seconds, 0);
      std::lock_guard<std::mutex> lk(sh->mu);
      sh->out[i] = std::move(o);
      ++sh->done;
      sh->cv.notify_all();
    };
    std::shared_ptr<runtime::Job> job;
    try {
      job = st.sched->submit(std::move(jr));
    } catch (const InvalidArgument& e) {
      for (auto& j : jobs) j->cancel();
      throw ApiError(400, e.what(), "input");
    }
    if (!job) {
      for (auto& j : jobs) j->cancel();
      // Wait for the cancelled ones so no callback outlives this request's state needlessly.
      std::unique_lock<std::mutex> lk(sh->mu);
      sh->cv.wait(lk, [&] { return sh->done == jobs.size(); });
      st.metrics.rejected();
      throw ApiError(429, "The server is busy; retry shortly.", "", "rate_limit_exceeded");
    }
    jobs.push_back(std::move(job));
  }
  {
    std::unique_lock<std::mutex> lk(sh->mu);
    sh->cv.wait(lk, [&] { return sh->done == inputs.size(); });
  }
  ojson data = ojson::array();
  int64_t n_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto& o = sh->out[i];
    if (!o.error.empty() || o.embedding.empty())
      throw ApiError(500, "embedding failed: " + (o.error.empty() ? o.result.finish_reason : o.error));
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
  send_json(res, {{"object", "list"}, {"data", data}, {"model", st.opts.model_id},
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
             send_json(res, {{"object", "list"}, {"data", ojson::array({model_json(st)})}});
           }));
  http.Get(R"(/v1/models/(.+))", guarded([&st](const httplib::Request& req, httplib::Response& res) {
             const std::string id = req.matches[1];
             if (id != st.opts.model_id)
               throw ApiError(404, "The model '" + id + "' does not exist", "model", "model_not_found");
             send_json(res, model_json(st));
           }));
  auto emb = guarded([&st](const httplib::Request& req, httplib::Response& res) { embeddings(st, req, res); });
  http.Post("/v1/embeddings", emb);
  http.Post("/embeddings", emb);
  http.Get("/health", guarded([&st](const httplib::Request&, httplib::Response& res) {
             const auto s = st.sched->stats();
             send_json(res, {{"status", "ok"}, {"model", st.opts.model_id}, {"slots_idle", s.n_slots - s.active},
                             {"slots_processing", s.active}, {"queued", s.queued}});
           }));
  http.Get("/metrics", guarded([&st](const httplib::Request&, httplib::Response& res) {
             res.set_content(st.metrics.render(st.sched->stats()), "text/plain; version=0.0.4; charset=utf-8");
           }));
}

}  // namespace edgellm::server
