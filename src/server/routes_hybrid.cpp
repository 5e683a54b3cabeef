// Chat completions under a routing policy: hybrid::Orchestrator decides device or cloud per
// request (docs/hybrid.md "Server integration"); the answer carries "tier" and "route", plain
// answers also the x-edgellm-route headers.
#include <optional>
#include <string_view>

#include "hybrid/orchestrator.h"
#include "server/generate.h"
#include "server/local_job.h"
#include "server/peer_watch.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

// The device under the orchestrator: the request's prompt and parameters as a job on the leased
// model's scheduler. Keeps the job's outcome for the answer's timings.
class SchedulerBackend final : public hybrid::DeviceBackend {
 public:
  SchedulerBackend(GenCtx& c, std::function<bool()> alive) : c_(c), alive_(std::move(alive)) {}
  runtime::GenerateResult generate(const std::vector<int32_t>& prompt, const runtime::GenerateParams& params,
                                   const hybrid::StreamFn* on_delta) override {
    GenerateRequest g = c_.g;  // the request's other settings (adapters, tools...) as they are
    g.prompt = prompt;
    g.params = params;
    LocalJob job(*c_.st, c_.model, g, on_delta != nullptr);
    PieceFn piece = [on_delta](const std::string& t) { return (*on_delta)(t); };
    outcome_ = job.wait(on_delta ? &piece : nullptr, alive_);
    runtime::GenerateResult r = outcome_->result;
    r.finish_reason = finish_reason(r);  // OpenAI's names
    return r;
  }
  const std::optional<runtime::JobOutcome>& outcome() const { return outcome_; }
  const runtime::Engine* engine() const override { return c_.model->model().engine.get(); }
  int32_t n_ctx() const override { return c_.model->model().gctx.n_ctx; }

 private:
  GenCtx& c_;
  std::function<bool()> alive_;
  std::optional<runtime::JobOutcome> outcome_;
};

Answer hybrid_answer(const hybrid::HybridResponse& out, const SchedulerBackend& device) {
  Answer a;
  a.text = out.result.text;
  a.finish_reason = out.result.finish_reason.empty() ? "stop" : out.result.finish_reason;
  a.local = out.route.tier == hybrid::Tier::Device;
  if (!a.local && out.tool_calls.is_array()) a.cloud_tool_calls = ojson(out.tool_calls);
  a.prompt_tokens = out.result.n_prompt;
  a.completion_tokens = out.result.n_generated;
  if (a.local && device.outcome()) a.timings = timings_json(*device.outcome());
  a.route = ojson(out.route.to_json());
  return a;
}

// x-edgellm-route: the decision in one header ("tier=cloud; reason=low_confidence; ..."), plus
// the tier and the reason alone for simple proxies and logs.
void set_route_headers(httplib::Response& res, const hybrid::RouteRecord& r) {
  const char* tier = r.tier == hybrid::Tier::Device ? "local" : "cloud";
  auto b = [](bool v) { return v ? "true" : "false"; };
  std::string v = std::string("tier=") + tier + "; reason=" + r.reason + "; mode=" + r.mode +
                  "; escalated=" + b(r.escalated) + "; fallback=" + b(r.fallback) + "; redacted=" + b(r.redacted);
  if (!r.cloud_error.empty()) v += "; cloud_error=" + r.cloud_error;
  res.set_header("X-Edgellm-Route", v);
  res.set_header("X-Edgellm-Route-Tier", tier);
  res.set_header("X-Edgellm-Route-Reason", r.reason);
}

void respond_plain(GenCtx& c, const httplib::Request& req, hybrid::HybridRequest& hr, httplib::Response& res) {
  // As in the unrouted path: a client that hangs up cancels the device's generation.
  const PeerWatch peer(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
  SchedulerBackend device(c, [&peer] { return peer.alive(); });
  hybrid::HybridResponse out;
  try {
    out = c.st->orch->handle(hr, device, nullptr);
  } catch (const ClientGone& e) {
    send_error(res, 499, e.what(), "", "client_closed_request");
    c.done();
    return;
  }
  if (!out.ok) throw ApiError(502, out.error, "", "cloud_error");  // only streams fail this way
  set_route_headers(res, out.route);
  send_json(res, whole_json(c.reply(), hybrid_answer(out, device)));
  c.done();
}

// Runs the whole routed request inside the content provider: headers are out before the route
// is known, so the route travels on the finish chunk (and on error events).
bool stream_routed(GenCtx& c, const hybrid::HybridRequest& hr, httplib::DataSink& sink) {
  StreamOut out(c.reply(), sink);
  try {
    if (!out.start()) return false;
  } catch (...) {
    return false;
  }
  hybrid::StreamFn on_delta = [&out](std::string_view d) { return out.delta(std::string(d)); };
  hybrid::StreamBreakFn on_break = [&out](const std::string& msg) {
    return out.interrupt("cloud answer interrupted (" + msg + "); the device answers instead", nullptr);
  };
  SchedulerBackend device(c, [&out] { return out.alive(); });
  try {
    hybrid::HybridResponse r = c.st->orch->handle(hr, device, &on_delta, on_break);
    Answer a = hybrid_answer(r, device);
    if (r.ok) return out.finish(a);
    if (r.route.cloud_error == "cancelled") return false;  // the client is gone
    a.finish_reason = "error";
    ApiError e(502, r.error, "", "cloud_stream_interrupted");
    return out.finish(a, &e);
  } catch (const ClientGone&) {
    return false;
  } catch (const ApiError& e) {
    out.fail(e);
  } catch (const InvalidArgument& e) {
    out.fail(ApiError(400, e.what()));
  } catch (const std::exception& e) {
    out.fail(ApiError(500, std::string("internal error: ") + e.what()));
  } catch (...) {  // runs inside httplib's content provider: nothing may escape (see routes_generate.cpp)
    out.fail(ApiError(500, "internal error"));
  }
  return true;
}

}  // namespace

void respond_hybrid(GenCtx& c, const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);  // parse_body accepted it
  try {
    hybrid::parse_route_override(body);  // a bad "route" is a 400 before any header is sent
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), "route", "invalid_route");
  }
  auto hr = std::make_shared<hybrid::HybridRequest>();
  hr->body = std::move(body);
  hr->request_id = c.id;
  hr->app = req.get_header_value("X-App");
  hr->prompt_tokens = static_cast<int64_t>(c.g.prompt.size());
  hr->prompt = c.g.prompt;
  hr->params = c.g.params;
  hr->verify_draft_max = c.g.verify_max;
  if (!c.g.stream) {
    respond_plain(c, req, *hr, res);
    return;
  }
  auto cp = std::make_shared<GenCtx>(std::move(c));
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [cp, hr](size_t, httplib::DataSink& sink) { return stream_routed(*cp, *hr, sink); },
      [cp](bool) { cp->done(); });
}

}  // namespace edgellm::server
