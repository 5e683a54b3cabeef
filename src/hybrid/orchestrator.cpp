#include "hybrid/orchestrator.h"

#include <chrono>
#include <unordered_set>

#include "hybrid/json_depth.h"
#include "hybrid/orchestrator_prepared.h"
#include "hybrid/redact.h"
#include "util/error.h"

namespace edgellm::hybrid {

using nlohmann::json;

const std::vector<std::string>& local_only_request_fields() {
  static const std::vector<std::string> f = {"route", "top_k", "min_p", "repeat_penalty", "repeat_last_n",
                                             "ignore_eos", "n_probs", "cache_prompt", "slot_id", "grammar",
                                             "speculative"};
  return f;
}

namespace {

// Message texts: string content, text parts, and tool-call argument strings.
void collect_slots(json& body, std::vector<json*>& out) {
  if (!body.contains("messages") || !body["messages"].is_array()) return;
  for (auto& m : body["messages"]) {
    if (!m.is_object()) continue;
    if (m.contains("content")) {
      json& c = m["content"];
      if (c.is_string()) out.push_back(&c);
      else if (c.is_array())
        for (auto& part : c)
          if (part.is_object() && part.contains("text") && part["text"].is_string()) out.push_back(&part["text"]);
    }
    if (m.contains("tool_calls") && m["tool_calls"].is_array())
      for (auto& tc : m["tool_calls"])
        if (tc.is_object() && tc.contains("function") && tc["function"].is_object() &&
            tc["function"].contains("arguments") && tc["function"]["arguments"].is_string())
          out.push_back(&tc["function"]["arguments"]);
  }
}

// Every string value of the request: besides message texts, the "user" field, message names, tool
// definitions, response_format, stop strings, metadata... reach the cloud too. Structural values are skipped; object keys
// cannot be rewritten and are not scanned.
// Document order as a recursive walk would give it (placeholder numbers follow it), with an
// explicit stack: the body's depth is bounded by handle(), but the walk does not rely on that.
// An array element inherits its array's key.
void collect_other_strings(json& root, std::vector<json*>& out) {
  static const std::string kNoKey;
  std::vector<std::pair<json*, const std::string*>> stack{{&root, &kNoKey}};
  std::vector<std::pair<json*, const std::string*>> children;
  while (!stack.empty()) {
    auto [v, key] = stack.back();
    stack.pop_back();
    if (v->is_string()) {
      if (*key != "model" && *key != "role" && *key != "type") out.push_back(v);
      continue;
    }
    children.clear();
    if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) children.emplace_back(&it.value(), &it.key());
    } else if (v->is_array()) {
      for (auto& x : *v) children.emplace_back(&x, key);
    }
    stack.insert(stack.end(), children.rbegin(), children.rend());  // first child on top
  }
}

int64_t json_int(const json& body, const char* key) {
  if (body.contains(key) && body[key].is_number_integer()) return body[key].get<int64_t>();
  return -1;
}

// Route reason for a failed cloud call, from cloud_error_name().
const char* failure_reason(const std::string& err) {
  if (err == "timeout") return "timeout";
  if (err == "circuit_open" || err == "connect" || err == "not_configured") return "cloud_down";
  return "cloud_error";
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Orchestrator::Orchestrator(Policy policy, LocalInfo local, NowMs clock)
    : policy_(std::move(policy)),
      local_(local),
      detector_(policy_.pii),
      router_(policy_),
      budget_(policy_.budget, clock),
      breaker_(policy_.breaker, clock),
      cloud_(policy_.cloud, &breaker_) {
  if (!policy_.audit.path.empty()) audit_ = std::make_unique<AuditLog>(policy_.audit);
}

Orchestrator::~Orchestrator() = default;

CloudState Orchestrator::cloud_state() const {
  CloudState s;
  s.available = policy_.cloud.configured() && breaker_.available();
  s.budget = budget_.snapshot();
  return s;
}

runtime::GenerateResult SessionBackend::generate(const std::vector<int32_t>& prompt,
                                                 const runtime::GenerateParams& params, const StreamFn* on_delta) {
  runtime::TextCallback piece;
  if (on_delta) piece = [on_delta](const std::string& t) { return (*on_delta)(t); };
  return session_.generate(prompt, params, piece);
}

runtime::GenerateResult Orchestrator::run_local(const Prepared& p, DeviceBackend& device, const StreamFn* on_delta,
                                                double* ms) {
  auto t0 = std::chrono::steady_clock::now();
  runtime::GenerateResult r = device.generate(p.req->prompt, p.req->params, on_delta);
  *ms = ms_since(t0);
  return r;
}

HybridResponse Orchestrator::run_cloud(Prepared& p, const StreamFn* on_delta, bool* delivered) {
  if (p.features.pii_redact && !p.redacted) {
    // Only redact-action findings become placeholders; allow-action ones go as they are.
    for (size_t i = 0; i < p.slots.size(); ++i) {
      std::vector<PiiSpan> keep;
      for (const auto& s : p.spans[i])
        if (policy_.action_for(s) == PrivacyAction::Redact) keep.push_back(s);
      if (!keep.empty()) *p.slots[i] = p.redactor.redact(p.slots[i]->get<std::string>(), keep);
    }
    p.redacted = true;
  }
  HybridResponse out;
  CloudResult cr;
  if (on_delta) {
    StreamRestorer sr(p.redactor);
    cr = cloud_.stream(p.cloud_body, [&](std::string_view d) {
      std::string text = sr.push(d);
      if (text.empty()) return true;
      *delivered = true;
      out.result.text += text;
      return (*on_delta)(text);
    });
    if (cr.ok()) {
      std::string tail = sr.finish();
      if (!tail.empty()) {
        *delivered = true;
        out.result.text += tail;
        (*on_delta)(tail);
      }
    }
  } else {
    cr = cloud_.complete(p.cloud_body);
    if (cr.ok()) out.result.text = p.redactor.restore(cr.text);
  }
  if (cr.ok()) {
    out.tool_calls = cr.tool_calls;
    if (out.tool_calls.is_array())
      for (auto& tc : out.tool_calls)
        if (tc.is_object() && tc.contains("function") && tc["function"].is_object() &&
            tc["function"].contains("arguments") && tc["function"]["arguments"].is_string())
          tc["function"]["arguments"] = p.redactor.restore(tc["function"]["arguments"].get<std::string>());
  }
  out.ok = cr.ok();
  out.error = cr.message;
  out.result.finish_reason = cr.finish_reason;
  out.result.n_prompt = static_cast<int32_t>(cr.prompt_tokens);
  out.result.n_generated = static_cast<int32_t>(cr.completion_tokens);
  out.route.cloud_ms = cr.latency_ms;
  out.route.cloud_attempts = cr.attempts;
  out.route.cloud_status = cr.http_status;
  if (!cr.ok()) out.route.cloud_error = cloud_error_name(cr.error);
  return out;
}

void Orchestrator::finish(const Prepared& p, HybridResponse& r, bool cloud_used, int64_t device_tokens,
                          int64_t cloud_tokens, const char* status) {
  budget_.record(cloud_used, device_tokens, cloud_tokens);
  if (!audit_) return;
  AuditEntry e;
  e.request_id = p.req->request_id;
  e.app = p.req->app;
  e.profile = policy_.name;
  e.route = r.route;
  e.prompt_tokens = r.result.n_prompt;
  e.completion_tokens = r.result.n_generated;
  if (cloud_used) {
    e.cloud_prompt_tokens = r.route.tier == Tier::Cloud ? r.result.n_prompt : -1;
    e.cloud_completion_tokens = r.route.tier == Tier::Cloud ? r.result.n_generated : -1;
  }
  e.pii_counts = p.features.pii_counts;
  e.prompt_sha256 = audit_->prompt_hash(p.prompt_concat);
  e.status = status;
  audit_->write(e);
}

HybridResponse Orchestrator::handle(const HybridRequest& req, DeviceBackend& device, const StreamFn* on_delta,
                                    const StreamBreakFn& on_stream_break) {
  // Copying the body below recurses once per level: bound the depth first (the server has
  // already refused such bodies; other callers may not have).
  if (json_value_depth(req.body) > kMaxJsonDepth)
    throw InvalidArgument("request body nests JSON more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  Prepared p;
  p.req = &req;
  p.features.route = parse_route_override(req.body);
  p.cloud_body = req.body;
  if (!p.cloud_body.is_object()) throw InvalidArgument("request body must be a JSON object");
  for (const auto& k : local_only_request_fields()) p.cloud_body.erase(k);
  // The request's "model" names the local model; without a cloud model it means nothing there.
  if (policy_.cloud.model.empty()) p.cloud_body.erase("model");
  collect_slots(p.cloud_body, p.slots);
  const size_t n_message_slots = p.slots.size();
  {
    std::vector<json*> all;
    collect_other_strings(p.cloud_body, all);  // also a message's "name", a tool call's id, ...
    std::unordered_set<const json*> seen(p.slots.begin(), p.slots.end());
    for (json* s : all)
      if (!seen.count(s)) p.slots.push_back(s);
  }
  size_t bytes = 0;
  for (size_t i = 0; i < p.slots.size(); ++i) {
    const std::string& text = p.slots[i]->get_ref<const std::string&>();
    p.spans.push_back(detector_.scan(text));
    add_pii_features(policy_, p.spans.back(), &p.features);
    if (i >= n_message_slots) continue;  // the prompt hash and size cover the messages
    p.prompt_concat += text;
    p.prompt_concat += '\n';
    bytes += text.size();
  }
  RequestFeatures& f = p.features;
  f.prompt_tokens = req.prompt_tokens >= 0 ? req.prompt_tokens : int64_t(bytes / 3 + 1);
  f.max_tokens = json_int(req.body, "max_completion_tokens");
  if (f.max_tokens < 0) f.max_tokens = json_int(req.body, "max_tokens");
  f.local_n_ctx = local_.n_ctx;
  f.local_supports_tools = local_.supports_tools;
  f.needs_tools = req.body.contains("tools") && req.body["tools"].is_array() && !req.body["tools"].empty() &&
                  !(req.body.contains("tool_choice") && req.body["tool_choice"] == "none");

  if (req.verify_draft_max > 0) return handle_verified(p, device, on_delta);
  p.decision = router_.decide(f, cloud_state());
  const Decision& d = p.decision;
  HybridResponse resp;
  resp.result.n_prompt = resp.result.n_generated = -1;  // unknown until a tier answers
  RouteRecord& rec = resp.route;
  rec.tier = d.tier;
  rec.reason = d.reason;
  rec.notes = d.notes;
  rec.mode = mode_name(d.mode);
  rec.fallback = d.fallback;
  rec.scores = d.scores;

  auto cloud_failed = [&](HybridResponse& c, bool delivered) {
    rec.cloud_error = c.route.cloud_error;
    rec.cloud_status = c.route.cloud_status;
    rec.cloud_attempts = c.route.cloud_attempts;
    rec.cloud_ms = c.route.cloud_ms;
    rec.redacted = p.redacted;
    if (delivered && c.route.cloud_error != "cancelled" && on_stream_break && on_stream_break(c.error)) {
      rec.notes.push_back("stream_interrupted");
      return true;
    }
    if (delivered || c.route.cloud_error == "cancelled") {
      // Part of the cloud's answer already reached the client: a device answer cannot be
      // spliced in, so the request ends with an error.
      resp.ok = false;
      resp.error = c.route.cloud_error == "cancelled" ? "cancelled by the client" : "cloud answer interrupted: " + c.error;
      resp.result = {};
      resp.result.text = c.result.text;
      resp.result.finish_reason = "error";
      rec.tier = Tier::Cloud;
      rec.reason = c.route.cloud_error == "cancelled" ? rec.reason : "cloud_error";
      return false;
    }
    return true;
  };
  auto fill_local = [&](const runtime::GenerateResult& lr, double ms) {
    resp.result = lr;
    rec.device_ms = ms;
  };
  // The cloud's answer in the runtime's shape; unknown counts: the local estimate / -1.
  auto fill_cloud = [&](HybridResponse& c, int32_t prompt_if_unknown) {
    resp.result = std::move(c.result);
    if (resp.result.n_prompt < 0) resp.result.n_prompt = prompt_if_unknown;
    resp.tool_calls = c.tool_calls;
  };
  auto tokens_of = [](const HybridResponse& r) {
    return std::max<int64_t>(r.result.n_prompt, 0) + std::max<int64_t>(r.result.n_generated, 0);
  };

  try {
    if (d.tier == Tier::Cloud) {
      bool delivered = false;
      HybridResponse c = run_cloud(p, on_delta, &delivered);
      if (c.ok) {
        fill_cloud(c, static_cast<int32_t>(f.prompt_tokens));
        rec.cloud_ms = c.route.cloud_ms;
        rec.cloud_attempts = c.route.cloud_attempts;
        rec.redacted = p.redacted;
        finish(p, resp, true, 0, tokens_of(resp), "ok");
        return resp;
      }
      if (!cloud_failed(c, delivered)) {
        finish(p, resp, true, 0, 0, "error");
        return resp;
      }
      rec.notes.push_back(rec.reason);
      rec.reason = failure_reason(c.route.cloud_error);
      rec.tier = Tier::Device;
      rec.fallback = true;
      double ms = 0;
      fill_local(run_local(p, device, on_delta, &ms), ms);
      finish(p, resp, c.route.cloud_attempts > 0, tokens_of(resp), 0, "ok");
      return resp;
    }

    // Device first.
    CloudState cs = cloud_state();
    bool judge = d.may_escalate;
    bool escalation_possible = cs.available && budget_allows(policy_.budget, cs.budget, Router::estimated_cloud_tokens(f));
    bool hold = judge && on_delta && policy_.confidence.hold_stream && escalation_possible;
    double ms = 0;
    const runtime::GenerateResult lr = run_local(p, device, on_delta && !hold ? on_delta : nullptr, &ms);
    fill_local(lr, ms);
    // Confidence scores are reported for every device answer (calibration reads them); they
    // only trigger escalation when the decision allowed it.
    LocalStats stats{lr.token_logprobs, lr.token_entropies, lr.finish_reason};
    Escalation e = router_.should_escalate(f, stats, cloud_state());
    rec.scores["quantile_logprob"] = e.quantile_logprob;
    rec.scores["mean_entropy"] = e.mean_entropy;
    rec.scores["completion_tokens"] = int64_t(std::max(lr.token_logprobs.size(), lr.token_entropies.size()));
    if (judge) {
      bool can_act = !on_delta || hold;
      if (e.escalate && can_act) {
        bool delivered = false;
        HybridResponse c = run_cloud(p, on_delta, &delivered);
        if (c.ok) {
          int64_t device_tokens = tokens_of(resp);
          fill_cloud(c, resp.result.n_prompt);
          rec.tier = Tier::Cloud;
          rec.reason = "low_confidence";
          rec.escalated = true;
          rec.redacted = p.redacted;
          rec.cloud_ms = c.route.cloud_ms;
          rec.cloud_attempts = c.route.cloud_attempts;
          finish(p, resp, true, device_tokens, tokens_of(resp), "ok");
          return resp;
        }
        if (!cloud_failed(c, delivered)) {
          finish(p, resp, true, tokens_of(resp), 0, "error");
          return resp;
        }
        fill_local(lr, ms);  // cloud_failed may have replaced the text
        rec.tier = Tier::Device;
        rec.notes.push_back("low_confidence");
        rec.reason = failure_reason(c.route.cloud_error);
        rec.fallback = true;
      } else if (e.escalate) {
        rec.notes.push_back("low_confidence");  // streamed without hold_stream: cannot be replaced
      } else if (!e.reason.empty()) {
        rec.notes.push_back("low_confidence");
        rec.reason = e.reason;  // budget_exhausted / cloud_down kept the device answer
      }
      if (hold && !resp.result.text.empty()) (*on_delta)(resp.result.text);
    }
    finish(p, resp, rec.cloud_attempts > 0, tokens_of(resp), 0, "ok");
    return resp;
  } catch (...) {
    resp.ok = false;
    rec.reason = rec.reason.empty() ? "error" : rec.reason;
    if (audit_) {
      try {
        finish(p, resp, false, 0, 0, "error");
      } catch (...) {
      }
    }
    throw;
  }
}

}  // namespace edgellm::hybrid
