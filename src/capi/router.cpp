// Hybrid device/cloud routing in-process: hybrid::Orchestrator over a session (docs/hybrid.md).
// Engine-only builds have no hybrid layer (no libcurl): the calls then say so.
#include "capi/capi_impl.h"

#if EDGELLM_CAPI_HYBRID
#include "hybrid/orchestrator.h"
#endif

using namespace edgellm;
using namespace edgellm::capi;

#if EDGELLM_CAPI_HYBRID
struct edgellm_router {
  std::unique_ptr<hybrid::Orchestrator> orch;
};

namespace {

edgellm_tier tier_of(hybrid::Tier t) { return t == hybrid::Tier::Cloud ? EDGELLM_TIER_CLOUD : EDGELLM_TIER_DEVICE; }

// What the cloud is asked: the messages and the sampling and length the app chose.
nlohmann::json cloud_body(const edgellm_chat_message* messages, size_t n, const runtime::GenerateParams& gp,
                          const edgellm_generate_options& o) {
  nlohmann::json body = {{"messages", nlohmann::json::array()},
                         {"temperature", gp.sampling.temperature},
                         {"top_p", gp.sampling.top_p}};
  for (size_t i = 0; i < n; ++i) body["messages"].push_back({{"role", messages[i].role}, {"content", messages[i].content}});
  if (o.max_tokens > 0) body["max_tokens"] = o.max_tokens;
  if (o.n_stop > 0) {
    body["stop"] = nlohmann::json::array();
    for (size_t i = 0; i < o.n_stop; ++i) body["stop"].push_back(o.stop[i]);
  }
  return body;
}

}  // namespace
#else
struct edgellm_router {};
#endif

namespace {
constexpr const char* kNoRouting =
    "this libedgellm was built without hybrid routing (EDGELLM_ENGINE_ONLY or EDGELLM_CAPI_ROUTING=OFF)";
}  // namespace

extern "C" {

edgellm_status edgellm_router_create(const char* policy_json, int32_t device_n_ctx, edgellm_router** out_router) {
  return guard([&] {
    require(policy_json, "policy_json");
    require(out_router, "out_router");
#if EDGELLM_CAPI_HYBRID
    if (device_n_ctx < 0)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "device_n_ctx must be >= 0 (0: unknown)"};
    const auto j = nlohmann::json::parse(policy_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "policy_json is not a JSON object"};
    hybrid::Policy policy = hybrid::parse_policy(j);
    hybrid::LocalInfo local;
    local.n_ctx = policy.local.n_ctx > 0 ? policy.local.n_ctx : device_n_ctx;
    local.supports_tools = policy.local.supports_tools.value_or(false);  // messages carry no tools here
    auto r = std::make_unique<edgellm_router>();
    try {
      r->orch = std::make_unique<hybrid::Orchestrator>(std::move(policy), local);
    } catch (const InvalidArgument&) {
      throw;
    } catch (const Error& e) {
      throw Failure{EDGELLM_ERR_IO, e.what()};  // the audit log cannot be opened
    }
    *out_router = r.release();
#else
    (void)device_n_ctx;
    throw Failure{EDGELLM_ERR_UNSUPPORTED, kNoRouting};
#endif
  });
}

void edgellm_router_free(edgellm_router* router) { delete router; }

edgellm_status edgellm_chat_routed(edgellm_router* router, edgellm_session* session,
                                   const edgellm_chat_message* messages, size_t n_messages,
                                   const edgellm_generate_options* options, edgellm_routed_result* result) {
  return guard([&] {
    require(router, "router");
    require(session, "session");
    if (result && result->struct_size < sizeof(size_t))
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "result.struct_size is not set"};
#if EDGELLM_CAPI_HYBRID
    const auto o = read_struct(options, default_generate_options(), "options");
    auto gp = generate_params(session, o);
    gp.on_token = nullptr;  // the app's callback gets the text that reaches it, from either tier
    const auto ids = chat_prompt(session, messages, n_messages, gp);
    hybrid::HybridRequest hr;
    hr.body = cloud_body(messages, n_messages, gp, o);
    hr.request_id = "capi";
    hr.app = "edgellm-capi";
    hr.prompt_tokens = static_cast<int64_t>(ids.size());
    hr.prompt = ids;
    hr.params = std::move(gp);
    hybrid::SessionBackend device(session->session);
    hybrid::StreamFn on_delta;
    if (o.on_token) {
      const auto cb = o.on_token;
      void* const user = o.user_data;
      on_delta = [cb, user](std::string_view d) { return cb(-1, d.data(), d.size(), user); };
    }
    hybrid::HybridResponse out = router->orch->handle(hr, device, o.on_token ? &on_delta : nullptr);
    session->last = std::move(out.result);
    session->route_json = out.route.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    session->tool_calls_json = out.tool_calls.is_array() && !out.tool_calls.empty() ? out.tool_calls.dump() : "";
    if (!out.ok) throw Failure{EDGELLM_ERR_CLOUD, out.error};
    if (!result) return;
    edgellm_routed_result full{};
    full.struct_size = sizeof full;
    full.tier = tier_of(out.route.tier);
    full.finish_reason = finish_reason(session->last.finish_reason);
    full.text = session->last.text.c_str();
    full.text_len = session->last.text.size();
    full.route_json = session->route_json.c_str();
    full.tool_calls_json = session->tool_calls_json.c_str();
    full.prompt_tokens = session->last.n_prompt;
    full.completion_tokens = session->last.n_generated;
    write_struct(result, full, "result");
#else
    (void)messages;
    (void)n_messages;
    (void)options;
    throw Failure{EDGELLM_ERR_UNSUPPORTED, kNoRouting};
#endif
  });
}

}  // extern "C"
