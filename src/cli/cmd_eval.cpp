// edgellm perplexity / logits: score text with the model (evaluation, golden tests).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct PplArgs {
  std::string model, file;
  int32_t n_ctx = 512;
  int32_t chunks = -1;
  int32_t threads = 0;
  bool json = false;
  bool no_bos = false;
};

// Non-overlapping chunks of n_ctx tokens, each from an empty cache; position j predicts
// token j+1. perplexity = exp(mean negative log-likelihood).
// BOS: when the model's tokenizer asks for one (tokenizer.ggml.add_bos_token), the first token
// of every chunk is replaced by BOS, as llama.cpp's perplexity does, so each chunk starts the
// way the model was trained to see a sequence start (Gemma degrades badly without it) and the
// chunking, hence the number of predictions, stays the same. --no-bos keeps the raw chunks.
void perplexity(const PplArgs& a) {
  if (a.n_ctx < 2) throw InvalidArgument("-c must be at least 2 for perplexity");
  const std::string text = read_file(a.file);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const auto ids = engine->tokenizer().encode(text, false, false);
  int64_t n_chunks = static_cast<int64_t>(ids.size()) / a.n_ctx;
  if (a.chunks >= 0) n_chunks = std::min<int64_t>(n_chunks, a.chunks);
  if (n_chunks == 0)
    throw InvalidArgument(a.file + " has " + std::to_string(ids.size()) + " tokens, fewer than one chunk of " +
                          std::to_string(a.n_ctx) + " (-c)");
  runtime::Session session(*engine, a.n_ctx);
  const int32_t n_vocab = engine->config().n_vocab;
  const int32_t bos = engine->tokenizer().bos_id();
  const bool use_bos = !a.no_bos && engine->tokenizer().add_bos_default() && bos >= 0;
  double nll = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(ids.begin() + c * a.n_ctx, ids.begin() + (c + 1) * a.n_ctx);
    if (use_bos) chunk[0] = bos;
    const auto logits = session.evaluate_all(chunk);
    for (int32_t j = 0; j + 1 < a.n_ctx; ++j) {
      const float* row = &logits[static_cast<size_t>(j) * n_vocab];
      double mx = row[0];
      for (int32_t v = 1; v < n_vocab; ++v) mx = std::max<double>(mx, row[v]);
      double sum = 0;
      for (int32_t v = 0; v < n_vocab; ++v) sum += std::exp(row[v] - mx);
      nll += -(row[chunk[j + 1]] - mx - std::log(sum));
      ++count;
    }
    if (!a.json) std::fprintf(stderr, "[%lld/%lld] running perplexity %.4f\n", static_cast<long long>(c + 1),
                              static_cast<long long>(n_chunks), std::exp(nll / count));
  }
  const double ppl = std::exp(nll / count);
  if (a.json) {
    std::printf("%s\n", nlohmann::json{{"perplexity", ppl}, {"n_tokens", ids.size()}, {"n_chunks", n_chunks},
                                       {"n_ctx", a.n_ctx}, {"bos", use_bos}}.dump().c_str());
  } else {
    std::printf("perplexity: %.4f over %lld chunks of %d tokens%s\n", ppl, static_cast<long long>(n_chunks), a.n_ctx,
                use_bos ? " (each starting with BOS)" : "");
  }
}

struct LogitsArgs {
  std::string model, ids, out;
  int32_t threads = 0;
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
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  runtime::Session session(*engine, static_cast<int32_t>(ids.size()));
  const auto out = session.evaluate_all(ids);
  std::ofstream f(a.out, std::ios::binary);
  if (!f) throw Error("cannot write " + a.out);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float)));
  if (!f) throw Error("write failed: " + a.out);
}

Registrar reg_ppl("perplexity", "Perplexity of a model on a text file", [](CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  app.add_option("-m,--model", a->model, "GGUF model (default: the cached default model)");
  app.add_option("-f,--file", a->file, "Text file")->required();
  app.add_option("-c,--ctx-size", a->n_ctx, "Tokens per chunk")->capture_default_str();
  app.add_option("--chunks", a->chunks, "Max chunks (-1 = all)")->capture_default_str();
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.add_flag("--json", a->json, "Print one JSON object");
  app.add_flag("--no-bos", a->no_bos, "Do not start chunks with BOS even if the model's tokenizer asks for it");
  add_exact_flag(app);
  app.callback([a] { perplexity(*a); });
});

Registrar reg_logits("logits", "Dump the logits of every position for given token ids", [](CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  app.add_option("-m,--model", a->model, "GGUF model (default: the cached default model)");
  app.add_option("--ids", a->ids, "Comma-separated token ids")->required();
  app.add_option("--out", a->out, "Output file: float32 [n_ids][n_vocab]")->required();
  add_exact_flag(app);
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.callback([a] { logits(*a); });
});

}  // namespace
}  // namespace edgellm::cli
