// edgellm chat: interactive multi-turn conversation in a terminal.
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "cli/mem_flags.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct ChatArgs {
  std::string model, system;
  int32_t n_predict = 512;
  int32_t n_ctx = 4096;
  int32_t threads = 0;
  std::string session_file;  // the conversation and its KV cache, resumed and saved after each turn
  bool no_context_shift = false;
  sampling::SamplingParams sampling;
  HybridFlags hybrid;
  KvTypeFlags kv;
  std::string mem_budget;
  LoraFlags lora;
};

// The chat turns a saved session keeps beside its tokens.
std::vector<chat::Message> turns_from_json(const std::string& text, const std::string& path) {
  std::vector<chat::Message> out;
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) throw Error(path + ": saved session holds no chat turns (was it saved by `run`?)");
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw Error(path + ": saved session's chat turns are damaged");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

void chat_loop(ChatArgs a) {
  auto policy = make_policy(a.hybrid);
  apply_mem_budget(a.mem_budget, a.model, a.n_ctx, nullptr, a.kv, 512, a.threads);
  const model::KvTypes kv = kv_types(a.kv);  // a bad -ctk/-ctv fails before the model loads
  const auto lora_specs = parse_lora_specs(a.lora);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const model::LoraSet lora = load_lora(lora_specs, engine->model());
  auto render = [&](const std::vector<chat::Message>& turns) {
    return engine->tokenize_chat(turns, true);  // typed control tokens stay text
  };
  // Context shift: while the prompt and room for an answer exceed the context, the oldest
  // turn (a user message and the replies after it) goes; a leading system message and the new
  // message stay. Returns how many messages went; `ids` is the prompt rendered without them.
  auto drop_oldest_turns = [&](std::vector<chat::Message>& turns, std::vector<int32_t>& ids, const ChatArgs& args) {
    const size_t room = static_cast<size_t>(std::min(args.n_predict >= 0 ? args.n_predict : args.n_ctx / 4, args.n_ctx / 2));
    const size_t first = !turns.empty() && turns[0].role == "system" ? 1 : 0;
    size_t dropped = 0;
    while (ids.size() + room > static_cast<size_t>(args.n_ctx) && turns.size() > first + 1) {
      size_t end = first + 1;
      while (end < turns.size() - 1 && turns[end].role != "user") ++end;
      turns.erase(turns.begin() + static_cast<std::ptrdiff_t>(first), turns.begin() + static_cast<std::ptrdiff_t>(end));
      dropped += end - first;
      ids = render(turns);
    }
    return dropped;
  };
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
  if (!a.session_file.empty() && policy) throw InvalidArgument("--session runs on the device only; drop --cloud / --policy");
  if (!a.session_file.empty() && file_exists(a.session_file)) {
    std::string turns;
    session.restore(a.session_file, &turns);  // another model's file, or a damaged one, fails here
    history = turns_from_json(turns, a.session_file);
    std::fprintf(stderr, "(resumed %zu messages, %zu tokens from %s)\n", history.size(), session.tokens().size(),
                 a.session_file.c_str());
  }
  auto save = [&] {
    if (a.session_file.empty()) return;
    nlohmann::json turns = nlohmann::json::array();
    for (const auto& m : history) turns.push_back({{"role", m.role}, {"content", m.content}});
    session.save(a.session_file, turns.dump());
  };
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
    auto ids = render(history);
    if (!a.no_context_shift) {
      const size_t dropped = drop_oldest_turns(history, ids, a);
      if (dropped > 0) {
        const int32_t kept = session.shift_to(ids);
        std::fprintf(stderr, "(context full: dropped the %zu oldest messages; %d tokens kept by shifting the cache, %zu to run)\n",
                     dropped, kept, ids.size() - static_cast<size_t>(kept));
      }
    }
    std::string answer;
    try {
      if (orch) {
        nlohmann::json messages = nlohmann::json::array();
        for (const auto& m : history) messages.push_back({{"role", m.role}, {"content", m.content}});
        answer = routed_turn(*orch, session, ids, gp, messages).result.text;
      } else {
        answer = session.generate(ids, gp, [](const std::string& piece) {
                   std::fwrite(piece.data(), 1, piece.size(), stdout);
                   std::fflush(stdout);
                   return true;
                 }).text;
        std::printf("\n");
      }
    } catch (const InvalidArgument& e) {
      // The message does not fit even alone (or --no-context-shift): say so, keep the process alive.
      history.pop_back();
      std::fprintf(stderr, "error: %s (use /reset)\n", e.what());
      continue;
    }
    history.push_back({"assistant", answer});
    save();
  }
}

Registrar reg("chat", "Interactive multi-turn chat in the terminal", [](CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("--system", a->system, "System message");
  app.add_option("-n,--n-predict", a->n_predict, "Max new tokens per answer")->capture_default_str();
  app.add_option("-c,--ctx-size", a->n_ctx, "Context size in tokens")->capture_default_str();
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)")->capture_default_str();
  app.add_option("--session", a->session_file,
                 "Saved conversation (turns + KV cache): resumed if the file exists, saved after every answer");
  app.add_flag("--no-context-shift", a->no_context_shift,
               "When the conversation outgrows the context, refuse the turn instead of dropping the oldest turns");
  add_sampling_flags(app, a->sampling);
  add_exact_flag(app);
  add_kv_type_flags(app, a->kv);
  add_mem_budget_flag(app, a->mem_budget);
  add_lora_flags(app, a->lora);
  add_hybrid_flags(app, a->hybrid);
  app.callback([a] { chat_loop(*a); });
});

}  // namespace
}  // namespace edgellm::cli
