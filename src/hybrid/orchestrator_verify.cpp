// Device drafts, the cloud verifies (HybridRequest::verify_draft_max, issue 12) under the routing
// policy: the same privacy, budget, circuit breaker, route record and audit as any cloud call.
// The cloud gets token ids of the whole conversation, which cannot be redacted, so any finding
// whose action is not "allow" keeps the request on the device (plain greedy decode).
#include <chrono>

#include "hybrid/orchestrator_prepared.h"
#include "hybrid/verifier.h"
#include "runtime/remote_verify.h"
#include "util/error.h"

namespace edgellm::hybrid {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

HybridResponse Orchestrator::handle_verified(Prepared& p, DeviceBackend& device, const StreamFn* on_delta) {
  const HybridRequest& req = *p.req;
  const RequestFeatures& f = p.features;
  const runtime::Engine* engine = device.engine();
  if (!engine || device.n_ctx() <= 0) throw InvalidArgument("this device cannot draft for a cloud verifier");
  if (req.params.sampling.temperature > 0.0f)
    throw InvalidArgument("a cloud verifier checks greedy answers: use temperature 0");
  if (req.params.constraint) throw InvalidArgument("a cloud verifier cannot apply a grammar constraint");

  HybridResponse resp;
  RouteRecord& rec = resp.route;
  const Mode mode = f.route.local_only ? Mode::LocalOnly : f.route.mode.value_or(policy_.mode);
  rec.mode = mode_name(mode);
  rec.notes.push_back("verify");
  // Why the device answers alone (empty: the cloud verifies).
  std::string keep;
  if (mode == Mode::LocalOnly) {
    keep = "local_only";
  } else if (f.pii_block || f.pii_redact) {
    keep = "privacy_block";
    if (!f.pii_block) rec.notes.push_back("redacted");  // would have been redacted; ids cannot be
  } else if (!policy_.cloud.configured() || !breaker_.available()) {
    keep = "cloud_down";
  } else if (!budget_.allows(Router::estimated_cloud_tokens(f))) {
    keep = "budget_exhausted";
  } else if (!breaker_.allow()) {  // claims the half-open probe; lost a race with another request
    keep = "cloud_down";
  }
  runtime::TextCallback on_text;
  if (on_delta) on_text = [on_delta](const std::string& t) { return (*on_delta)(t); };
  const auto t0 = std::chrono::steady_clock::now();
  if (!keep.empty()) {
    rec.tier = Tier::Device;
    rec.reason = keep;
    rec.fallback = keep == "cloud_down" || keep == "budget_exhausted";
    try {
      resp.result = device.generate(req.prompt, req.params, on_delta);
    } catch (...) {
      finish(p, resp, false, 0, 0, "error");
      throw;
    }
    rec.device_ms = ms_between(t0, std::chrono::steady_clock::now());
    finish(p, resp, false, resp.result.n_prompt + resp.result.n_generated, 0, "ok");
    return resp;
  }

  RuntimeVerifier verifier(policy_.cloud, engine->config().n_vocab);
  runtime::RemoteVerifyStats st;
  // Drafts are the device's greedy tokens; their quality only changes how many are accepted.
  runtime::GenerateParams dp;
  dp.sampling.temperature = 0.0f;
  auto draft = [&](const std::vector<int32_t>& ctx, int32_t k) {
    dp.max_tokens = k;
    return device.generate(ctx, dp, nullptr).tokens;
  };
  try {
    resp.result = runtime::generate_remote_verified(*engine, device.n_ctx(), draft, req.prompt, req.params, verifier,
                                                    req.verify_draft_max, &st, on_text);
  } catch (...) {
    breaker_.release();  // the device failed (or the client left): nothing learned about the cloud
    rec.cloud_attempts = static_cast<int>(verifier.requests());
    finish(p, resp, verifier.requests() > 0, 0, 0, "error");
    throw;
  }
  const double total_ms = ms_between(t0, std::chrono::steady_clock::now());
  rec.cloud_attempts = static_cast<int>(verifier.requests());
  rec.cloud_ms = verifier.cloud_ms();
  rec.device_ms = total_ms - verifier.cloud_ms();
  rec.scores["verify_rounds"] = st.rounds;
  rec.scores["verify_drafted"] = st.drafted;
  rec.scores["verify_accepted"] = st.accepted;
  rec.scores["verify_device_tokens"] = st.device_tokens;
  const int64_t n_prompt = static_cast<int64_t>(req.prompt.size());
  if (st.failure.empty()) {
    breaker_.record_success();
    rec.tier = Tier::Cloud;
    rec.reason = "verified";
  } else {
    const VerifyReply& last = verifier.last();
    // A verifier answer of the wrong length (last.ok()) is malformed too.
    if (last.ok() || verifier.health_failure()) breaker_.record_failure();
    else if (last.error == CloudError::HttpStatus) breaker_.record_success();  // reachable, refused this one
    else breaker_.release();
    const CloudError err = last.ok() ? CloudError::MalformedJson : last.error;
    rec.cloud_error = cloud_error_name(err);
    rec.cloud_status = last.http_status;
    rec.tier = Tier::Device;
    rec.reason = err == CloudError::Timeout ? "timeout" : err == CloudError::Connect ? "cloud_down" : "cloud_error";
    rec.fallback = true;
  }
  // The cloud processed the prompt and the tokens it chose (as if it had decoded them itself).
  const int64_t cloud_tokens = st.rounds > 0 ? n_prompt + st.verified_tokens : 0;
  finish(p, resp, verifier.requests() > 0, st.drafted + st.device_tokens, cloud_tokens, "ok");
  return resp;
}

}  // namespace edgellm::hybrid
