#pragma once
// Shared by the generation routes (internal to src/server): one request's context and the
// device answer in the shape the response builders take.
#include <chrono>
#include <string>

#include "server/responses.h"
#include "server/server_impl.h"

namespace edgellm::server {

struct GenCtx {
  ServerState* st = nullptr;
  std::shared_ptr<ModelLease> model;  // held until the answer is written: the model stays loaded
  GenerateRequest g;
  std::string id, route;
  int64_t created = 0;
  Clock::time_point t0;

  ReplyCtx reply() const { return {id, created, model->name(), &g, &model->model().engine->tokenizer()}; }
  void done() const {
    st->metrics.latency(route, std::chrono::duration<double>(Clock::now() - t0).count());
  }
};

ojson timings_json(const runtime::JobOutcome& o);
std::string finish_reason(const runtime::GenerateResult& r);
Answer local_answer(const runtime::JobOutcome& o);

// Chat requests when the server has a routing policy (routes_hybrid.cpp).
void respond_hybrid(GenCtx& c, const httplib::Request& req, httplib::Response& res);

}  // namespace edgellm::server
