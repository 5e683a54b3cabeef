// Chat completions under a routing policy: hybrid::Orchestrator decides device or cloud per
// request (docs/hybrid.md "Server integration"); the answer carries "tier" and "route", plain
// answers also the x-edgellm-route headers.
#include <string_view>

#include "hybrid/orchestrator.h"
#include "server/generate.h"
#include "server/local_job.h"
#include "server/peer_watch.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

hybrid::LocalResult to_local_result(const runtime::JobOutcome& o) {
  hybrid::LocalResult r;
  r.text = o.result.text;
  r.finish_reason = finish_reason(o.result);
  r.logprobs = o.result.token_logprobs;
  r.entropies = o.result.token_entropies;
  r.prompt_tokens = o.result.n_prompt;
  r.completion_tokens = o.result.n_generated;
  r.latency_ms = o.total_seconds * 1e3;
  r.extra = {{"timings", nlohmann::json(timings_json(o))}};
  return r;
}

Answer hybrid_answer(const hybrid::HybridResponse& out) {
  Answer a;
  a.text = out.text;
  a.finish_reason = out.finish_reason.empty() ? "stop" : out.finish_reason;
  a.local = out.route.tier == hybrid::Tier::Device;
  if (!a.local && out.tool_calls.is_array()) a.cloud_tool_calls = ojson(out.tool_calls);
  a.prompt_tokens = out.prompt_tokens;
  a.completion_tokens = out.completion_tokens;
  if (a.local && out.local_extra.is_object() && out.local_extra.contains("timings"))
    a.timings = ojson(out.local_extra["timings"]);
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
  hybrid::LocalGenerateFn local = [&c, &peer](const nlohmann::json&, const hybrid::StreamFn*) {
    LocalJob job(*c.st, c.model, c.g, false);
    return to_local_result(job.wait(nullptr, [&peer] { return peer.alive(); }));
  };
  hybrid::HybridResponse out;
  try {
    out = c.st->orch->handle(hr, local, nullptr);
  } catch (const ClientGone& e) {
    send_error(res, 499, e.what(), "", "client_closed_request");
    c.done();
    return;
  }
  if (!out.ok) throw ApiError(502, out.error, "", "cloud_error");  // only streams fail this way
  set_route_headers(res, out.route);
  send_json(res, whole_json(c.reply(), hybrid_answer(out)));
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
  hybrid::LocalGenerateFn local = [&](const nlohmann::json&, const hybrid::StreamFn* od) {
    LocalJob job(*c.st, c.model, c.g, od != nullptr);
    PieceFn piece = [od](const std::string& t) { return (*od)(t); };
    return to_local_result(job.wait(od ? &piece : nullptr, [&out] { return out.alive(); }));
  };
  try {
    hybrid::HybridResponse r = c.st->orch->handle(hr, local, &on_delta, on_break);
    Answer a = hybrid_answer(r);
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
