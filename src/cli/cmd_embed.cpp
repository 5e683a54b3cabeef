// edgellm embed: sentence embeddings with a BERT model (model/bert.h; GGUF from `edgellm convert`):
// one JSON array of floats (unit length) per input text on stdout, the speed on stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "runtime/embedder.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct EmbedArgs {
  std::string model, prompt, file, out;
  bool jsonl = false, quiet = false, truncate = false;
  int threads = 0, batch = 32;
};

std::vector<std::string> read_inputs(const EmbedArgs& a) {
  std::vector<std::string> texts;
  if (!a.prompt.empty()) texts.push_back(a.prompt);
  if (!a.file.empty()) {
    std::ifstream in(a.file);
    if (!in) throw Error("cannot open " + a.file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) texts.push_back(line);
  }
  if (a.jsonl) {
    for (std::string line; std::getline(std::cin, line);) {
      nlohmann::json s = nlohmann::json::parse(line, nullptr, false);
      if (!s.is_string()) throw InvalidArgument("--jsonl input lines must be JSON strings");
      texts.push_back(s.get<std::string>());
    }
  }
  if (texts.empty()) throw InvalidArgument("nothing to embed: give -p TEXT, -f FILE (one text per line) or --jsonl");
  return texts;
}

void embed(const EmbedArgs& a) {
  if (a.batch < 1) throw InvalidArgument("--batch must be at least 1");
  const auto texts = read_inputs(a);
  auto emb = runtime::Embedder::load(resolve_model(a.model), a.threads);
  std::ofstream bin;
  if (!a.out.empty()) {
    bin.open(a.out, std::ios::binary);
    if (!bin) throw Error("cannot write " + a.out);
  }
  using Clock = std::chrono::steady_clock;
  double seconds = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(a.batch)) {
    const size_t end = std::min(texts.size(), i + static_cast<size_t>(a.batch));
    const auto t0 = Clock::now();
    std::vector<std::vector<int32_t>> seqs;
    for (size_t j = i; j < end; ++j) {
      seqs.push_back(emb->tokenize(texts[j]));
      auto& ids = seqs.back();
      if (a.truncate && static_cast<int64_t>(ids.size()) > emb->max_tokens()) {
        // As sentence-transformers truncates: the first tokens, then the closing [SEP].
        const int32_t last = ids.back();
        ids.resize(static_cast<size_t>(emb->max_tokens()));
        ids.back() = last;
      }
      if (static_cast<int64_t>(ids.size()) > emb->max_tokens())
        throw InvalidArgument("text " + std::to_string(j + 1) + " has " + std::to_string(seqs.back().size()) +
                              " tokens; the model takes at most " + std::to_string(emb->max_tokens()) +
                              " (--truncate keeps the first ones)");
      tokens += static_cast<int64_t>(seqs.back().size());
    }
    const auto vecs = emb->embed_tokens(seqs);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (const auto& v : vecs) {
      if (bin.is_open()) bin.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
      else if (!a.quiet) std::cout << nlohmann::json(v).dump() << '\n';
    }
  }
  std::fprintf(stderr, "embedded %zu texts (%lld tokens, %d dims) in %.3f s: %.1f texts/s, %.0f tokens/s (%s, %d threads)\n",
               texts.size(), static_cast<long long>(tokens), emb->dim(), seconds, texts.size() / seconds,
               tokens / seconds, emb->config().name.c_str(),
               a.threads > 0 ? a.threads : ops::ThreadPool::physical_cores());
}

Registrar reg("embed", "Sentence embeddings with a BERT model (one JSON array per text)", [](CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  app.add_option("-m,--model", a->model, "Embedding model GGUF (BERT; `edgellm convert` makes one)")->required();
  app.add_option("-p,--prompt", a->prompt, "A text to embed");
  app.add_option("-f,--file", a->file, "Embed each non-empty line of a file");
  app.add_flag("--jsonl", a->jsonl, "Read JSON strings line by line from stdin");
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.add_option("-b,--batch", a->batch, "Texts per forward pass (default 32)");
  app.add_option("-o,--out", a->out, "Write float32 [texts][dims] to this file instead of JSON");
  app.add_flag("-q,--quiet", a->quiet, "Print only the speed");
  app.add_flag("--truncate", a->truncate, "Embed only the first tokens of a text longer than the model takes");
  app.callback([a] { embed(*a); });
});

}  // namespace
}  // namespace edgellm::cli
