// edgellm chat: interactive multi-turn conversation in a terminal.
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct ChatArgs {
  std::string model, system;
  int32_t n_predict = 512;
  int32_t n_ctx = 4096;
  int32_t threads = 0;
  sampling::SamplingParams sampling;
  HybridFlags hybrid;
  KvTypeFlags kv;
  LoraFlags lora;
};

void chat_loop(const ChatArgs& a) {
  auto policy = make_policy(a.hybrid);
  const model::KvTypes kv = kv_types(a.kv);  // a bad -ctk/-ctv fails before the model loads
  const auto lora_specs = parse_lora_specs(a.lora);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const model::LoraSet lora = load_lora(lora_specs, engine->model());
  std::unique_ptr<hybrid::Orchestrator> orch;
  if (policy) orch = std::make_unique<hybrid::Orchestrator>(*policy, hybrid::LocalInfo{a.n_ctx, false});
  runtime::Session session(*engine, a.n_ctx, kv);
  session.set_lora(lora);
  std::vector<chat::Message> history;
  auto start = [&] {
    history.clear();
    if (!a.system.empty()) history.push_back({"system", a.system});
  };
  start();
  runtime::GenerateParams gp;
  gp.sampling = a.sampling;
  gp.max_tokens = a.n_predict;
  gp.stop = engine->formatter().stop_strings();
  std::fprintf(stderr, "edgellm chat with %s. /reset starts over, /exit quits.\n",
               engine->config().name.c_str());
  std::string line;
  for (;;) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      start();
      session.reset();
      std::fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (line.empty()) continue;
    history.push_back({"user", line});
    nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
    for (const auto& m : history) msgs.push_back(chat::message_to_json(m));
    const auto ids = engine->tokenize_chat(msgs, true);  // typed control tokens stay text
    std::string answer;
    try {
      if (orch) {
        nlohmann::json messages = nlohmann::json::array();
        for (const auto& m : history) messages.push_back({{"role", m.role}, {"content", m.content}});
        answer = routed_turn(*orch, session, ids, gp, messages).text;
      } else {
        answer = session.generate(ids, gp, [](const std::string& piece) {
                   std::fwrite(piece.data(), 1, piece.size(), stdout);
                   std::fflush(stdout);
                   return true;
                 }).text;
        std::printf("\n");
      }
    } catch (const InvalidArgument& e) {
      // The conversation outgrew the context: say so and keep the process alive.
      history.pop_back();
      std::fprintf(stderr, "error: %s (use /reset)\n", e.what());
      continue;
    }
    history.push_back({"assistant", answer});
  }
}

Registrar reg("chat", "Interactive multi-turn chat in the terminal", [](CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("--system", a->system, "System message");
  app.add_option("-n,--n-predict", a->n_predict, "Max new tokens per answer")->capture_default_str();
  app.add_option("-c,--ctx-size", a->n_ctx, "Context size in tokens")->capture_default_str();
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)")->capture_default_str();
  add_sampling_flags(app, a->sampling);
  add_exact_flag(app);
  add_kv_type_flags(app, a->kv);
  add_lora_flags(app, a->lora);
  add_hybrid_flags(app, a->hybrid);
  app.callback([a] { chat_loop(*a); });
});

}  // namespace
}  // namespace edgellm::cli
