// edgellm logits: the logits of every position for given token ids (the golden tests).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct LogitsArgs {
  std::string model, ids, out;
  int32_t threads = 0;
  LoraFlags lora;
};

// Writes float32 logits [n_ids][n_vocab], row-major, for every position.
void logits(const LogitsArgs& a) {
  std::vector<int32_t> ids;
  std::stringstream ss(a.ids);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InvalidArgument("--ids must be comma-separated integers, got '" + item + "'");
    }
  }
  if (ids.empty()) throw InvalidArgument("--ids is empty");
  const auto lora_specs = parse_lora_specs(a.lora);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  runtime::Session session(*engine, static_cast<int32_t>(ids.size()));
  session.set_lora(load_lora(lora_specs, engine->model()));
  const auto out = session.evaluate_all(ids);
  std::ofstream f(a.out, std::ios::binary);
  if (!f) throw Error("cannot write " + a.out);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  if (!f) throw Error("write failed: " + a.out);
}

Registrar reg_logits("logits", "Dump the logits of every position for given token ids", [](CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("--ids", a->ids, "Comma-separated token ids")->required();
  app.add_option("--out", a->out, "Output file: float32 [n_ids][n_vocab]")->required();
  add_exact_flag(app);
  add_lora_flags(app, a->lora);
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.callback([a] { logits(*a); });
});

}  // namespace
}  // namespace edgellm::cli
