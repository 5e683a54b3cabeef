// edgellm run: one prompt in, the streamed answer out.
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "cli/mem_flags.h"
#include "hybrid/verifier.h"
#include "cli/draft_flags.h"
#include "runtime/draft_model.h"
#include "runtime/remote_verify.h"
#include "runtime/speculative.h"
#include "sampling/json_schema.h"
#include "runtime/grammar_constraint.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct RunArgs {
  std::string model, prompt, prompt_file, system;
  std::string json_schema;  // file: constrain the answer to JSON matching it
  int32_t n_predict = 256;
  int32_t n_ctx = 4096;
  int32_t threads = 0;
  bool raw = false;
  bool ignore_eos = false;
  bool lookup = false;     // speculative decoding with prompt-lookup drafts
  std::string draft;       // ... or with this draft model's
  int32_t draft_max = 8;
  DraftSpeed draft_speed;
  std::string verify_url, verify_model;  // device drafts, this server verifies
  int32_t verify_rtt_ms = 0;             // added to each verifier round trip (measurements)
  std::string session_file;  // saved tokens + KV cache: resumed or reused, then saved again
  std::vector<std::string> stop;
  sampling::SamplingParams sampling;
  HybridFlags hybrid;
  KvTypeFlags kv;
  std::string mem_budget;
  LoraFlags lora;
};

void run(RunArgs a) {
  std::string prompt = a.prompt_file.empty() ? a.prompt : read_file(a.prompt_file);
  const bool have_session = !a.session_file.empty() && file_exists(a.session_file);
  // With a saved session and no prompt, generation continues where the saved one stopped.
  const bool resume = prompt.empty() && have_session;
  if (prompt.empty() && !resume)
    throw InvalidArgument(a.session_file.empty() ? "empty prompt: pass the text with -p or -f"
                                                 : "empty prompt: pass the text with -p or -f (" + a.session_file +
                                                       " does not exist yet, so there is nothing to continue)");
  auto policy = make_policy(a.hybrid);
  if (policy && !a.session_file.empty()) throw InvalidArgument("--session runs on the device only; drop --cloud / --policy");
  const bool speculate = a.lookup || !a.draft.empty();
  if (a.lookup && !a.draft.empty()) throw InvalidArgument("--lookup and --draft are two proposers; choose one");
  if (policy && speculate) throw InvalidArgument("--lookup and --draft run on the device only; drop --cloud / --policy");
  if (!a.verify_url.empty() && (speculate || !a.hybrid.cloud_url.empty() || !a.json_schema.empty() ||
                                 !a.session_file.empty()))
    throw InvalidArgument("--verify drafts with -m and checks with the server; drop --lookup/--draft/--cloud/"
                          "--json-schema/--session");
  // Privacy: token ids of the whole text go to a verifier, so nothing can be redacted; text the
  // policy (--policy, else the default) would redact or block, or a local-only mode, keeps the
  // answer on the device.
  std::string keep_local;
  if (!a.verify_url.empty()) {
    const hybrid::Policy pol = policy ? *policy : hybrid::default_policy();
    if (pol.mode == hybrid::Mode::LocalOnly) keep_local = "the policy is local-only";
    const hybrid::PiiDetector detector(pol.pii);
    for (const std::string* text : {&a.system, &prompt})
      for (const auto& span : detector.scan(*text))
        if (keep_local.empty() && pol.action_for(span) != hybrid::PrivacyAction::Allow)
          keep_local = "the prompt holds " + std::string(hybrid::pii_kind_name(span.kind)) + " that the privacy policy (" +
                       pol.name + ") keeps on the device";
    policy.reset();
  }
  if (a.draft_max < 0) throw InvalidArgument("--draft-max must be >= 0, got " + std::to_string(a.draft_max));
  if (policy && (a.raw || !a.json_schema.empty()))
    throw InvalidArgument("--raw and --json-schema run on the device only; drop --cloud / --policy");
  apply_mem_budget(a.mem_budget, a.model, a.n_ctx, nullptr, a.kv, 512, a.threads,
                   a.draft.empty() ? "" : resolve_model(a.draft));
  const model::KvTypes kv = kv_types(a.kv);  // a bad -ctk/-ctv fails before the model loads
  const auto lora_specs = parse_lora_specs(a.lora);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const model::LoraSet lora = load_lora(lora_specs, engine->model());
  runtime::GenerateParams gp;
  gp.sampling = a.sampling;
  gp.max_tokens = a.n_predict;
  gp.stop = a.stop;
  gp.ignore_eos = a.ignore_eos;
  if (!a.json_schema.empty())
    gp.constraint = std::make_shared<runtime::GrammarTokenConstraint>(
        sampling::compile_json_schema_text(read_file(a.json_schema)), runtime::make_token_trie(engine->tokenizer()));
  runtime::Session session(*engine, a.n_ctx, kv);
  session.set_lora(lora);
  std::vector<int32_t> restored;
  if (have_session) {
    session.restore(a.session_file);  // another model's file, or a damaged one, fails here
    restored = session.tokens();
  }
  std::vector<int32_t> ids;
  if (resume) {
    ids = session.tokens();
    if (ids.empty()) throw InvalidArgument(a.session_file + " holds no tokens to continue from; pass a prompt");
    if (!a.raw)
      for (auto& s : engine->formatter().stop_strings()) gp.stop.push_back(s);
  } else if (a.raw) {
    ids = engine->tokenize_prompt(prompt);  // a --raw prompt may write control tokens on purpose
  } else {
    // Control tokens are parsed in the template's text only, not in the prompt or system text.
    std::vector<chat::Message> msgs;
    if (!a.system.empty()) msgs.push_back({"system", a.system});
    msgs.push_back({"user", prompt});
    ids = engine->tokenize_chat(msgs, true);
    for (auto& s : engine->formatter().stop_strings()) gp.stop.push_back(s);
  }
  if (policy) {
    hybrid::Orchestrator orch(*policy, {a.n_ctx, false});
    nlohmann::json messages = nlohmann::json::array();
    if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    routed_turn(orch, session, ids, gp, messages);
    return;
  }
  auto print = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  runtime::GenerateResult res;
  runtime::RemoteVerifyStats vst;
  if (!a.verify_url.empty() && !keep_local.empty()) {
    std::fprintf(stderr, "[verifier not used: %s; the device answers alone]\n", keep_local.c_str());
    res = session.generate(ids, gp, print);
  } else if (!a.verify_url.empty()) {
    hybrid::CloudConfig cc;
    cc.base_url = a.verify_url;
    cc.model = a.verify_model;
    hybrid::RuntimeVerifier remote(cc, engine->config().n_vocab, a.verify_rtt_ms);
    res = runtime::generate_remote_verified(session, ids, gp, remote, std::max(a.draft_max, 1), &vst, print);
  } else if (speculate) {
    runtime::SpeculativeOptions so;
    if (a.lookup) so.proposer = std::make_shared<runtime::PromptLookupProposer>();
    else so.proposer = make_drafter(*engine, resolve_model(a.draft), a.n_ctx, a.draft_speed);
    so.draft_max = a.draft_max;
    // No measure_spec_costs here: timing the passes took 1-2 s on a quiet 1.5B and 6 s on a busy one before
    // the first token, more than speculation saves on a short answer. The policy learns the cost from the
    // generation's own passes, as the server's does.
    res = runtime::generate_speculative(session, ids, gp, so, print);
  } else {
    res = session.generate(ids, gp, print);
  }
  std::printf("\n");
  std::fflush(stdout);
  if (!a.session_file.empty()) {
    // The last token sampled before a length or stop-string end was never run; run it so the
    // saved cache holds the whole answer and a resumed run continues exactly as an
    // uninterrupted one would.
    const size_t cached = session.tokens().size() - std::min(session.tokens().size(), ids.size());
    if (cached < res.tokens.size()) {
      std::vector<float> logits((res.tokens.size() - cached) * static_cast<size_t>(engine->config().n_vocab));
      session.extend({res.tokens.begin() + static_cast<std::ptrdiff_t>(cached), res.tokens.end()}, logits.data());
    }
    session.save(a.session_file);
    size_t reused = 0;  // what load_prompt kept: the common prefix, less the last prompt token
    while (reused < restored.size() && reused < ids.size() && ids[reused] == restored[reused]) ++reused;
    reused = std::min(reused, ids.size() - 1);
    std::fprintf(stderr, "[session %s: restored %zu tokens, reused %zu of the prompt's %zu; saved %zu]\n",
                 a.session_file.c_str(), restored.size(), reused, ids.size(), session.tokens().size());
  }
  std::string spec;
  if (!a.verify_url.empty() && keep_local.empty()) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "; verifier %d rounds (%.2f per token), drafted %d, accepted %d (%.0f%%)%s%s%s",
                  vst.rounds, static_cast<double>(vst.rounds) / std::max(res.n_generated, 1), vst.drafted, vst.accepted,
                  100.0 * vst.accepted / std::max(vst.drafted, 1), vst.failure.empty() ? "" : "; verifier failed (",
                  vst.failure.substr(0, 200).c_str(),
                  vst.failure.empty() ? "" : ("), " + std::to_string(vst.device_tokens) + " tokens completed on the device").c_str());
    spec = buf;
  }
  if (speculate) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "; %d passes, drafted %d, accepted %d (%.0f%%)", res.n_decode_passes, res.n_drafted,
                  res.n_draft_accepted, 100.0 * res.n_draft_accepted / std::max(res.n_drafted, 1));
    spec = buf;
  }
  std::fprintf(stderr, "[prompt %d tokens in %.2f s (%.1f tok/s); generated %d tokens in %.2f s (%.1f tok/s)%s; %s]\n",
               res.n_prompt, res.prefill_seconds, res.n_prompt_evaluated / std::max(res.prefill_seconds, 1e-9),
               res.n_generated, res.decode_seconds, res.n_generated / std::max(res.decode_seconds, 1e-9),
               spec.c_str(), res.finish_reason.c_str());
}

Registrar reg("run", "Generate an answer to one prompt", [](CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("-p,--prompt", a->prompt, "Prompt text");
  app.add_option("-f,--file", a->prompt_file, "Read the prompt from a file");
  app.add_option("--system", a->system, "System message");
  app.add_option("-n,--n-predict", a->n_predict, "Max new tokens (-1 = until the context is full)")->capture_default_str();
  app.add_option("-c,--ctx-size", a->n_ctx, "Context size in tokens")->capture_default_str();
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)")->capture_default_str();
  app.add_flag("--raw", a->raw, "Send the prompt as is, without the chat template");
  app.add_flag("--ignore-eos", a->ignore_eos, "Keep generating past end-of-generation tokens");
  app.add_option("--stop", a->stop, "Stop string (repeatable)");
  app.add_option("--json-schema", a->json_schema, "Constrain the answer to JSON matching the schema in this file");
  app.add_flag("--lookup", a->lookup,
               "Speculative decoding with prompt-lookup drafts (the answer is the same; faster when it repeats "
               "the prompt)");
  app.add_option("--draft", a->draft,
                 "Speculative decoding with drafts from this smaller model of the same vocabulary (name or GGUF); "
                 "greedy: the same answer, sampling: the same distribution (rejection rule), reproducible per seed");
  app.add_option("--draft-max", a->draft_max,
                 "Longest speculative draft per pass (with --lookup or --draft; adapts below it)")
      ->capture_default_str();
  add_draft_speed_flags(app, a->draft_speed);
  app.add_option("--verify", a->verify_url,
                 "Device drafts, this OpenAI-compatible server verifies (base URL, e.g. http://host:8080/v1; same "
                 "vocabulary): the answer is the server model's greedy answer, one request per --draft-max tokens; "
                 "if the server fails, the device completes the answer");
  app.add_option("--verify-model", a->verify_model, "The \"model\" sent to the --verify server");
  app.add_option("--verify-rtt-ms", a->verify_rtt_ms, "Added delay per verifier round trip (to measure a WAN)");
  app.add_option("--session", a->session_file,
                 "Saved session (tokens + KV cache): loaded if it exists, the prompt reuses its matching prefix, "
                 "and it is saved again at the end; with no prompt, generation continues where it stopped");
  add_sampling_flags(app, a->sampling);
  add_exact_flag(app);
  add_kv_type_flags(app, a->kv);
  add_mem_budget_flag(app, a->mem_budget);
  add_lora_flags(app, a->lora);
  add_hybrid_flags(app, a->hybrid);
  app.callback([a] { run(*a); });
});

}  // namespace
}  // namespace edgellm::cli
