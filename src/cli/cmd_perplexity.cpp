// edgellm perplexity: score a text with the model (llama-perplexity's protocol by default), and
// KL-divergence against a saved base run. Protocols and the base file: perplexity.h.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/lora_flags.h"
#include "cli/perplexity.h"
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
  bool all_tokens = false;
  std::string kl_base;  // --kl-divergence-base FILE
  bool kl = false;      // --kl-divergence: compare with FILE instead of writing it
  int32_t kl_top_k = 64;
  bool ctx_given = false;
  KvTypeFlags kv;
  LoraFlags lora;
};

// Mean of x and its standard error.
struct Moments {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double x) { sum += x, sum2 += x * x, ++n; }
  double mean() const { return n ? sum / n : 0; }
  double stderr_of_mean() const {
    if (n < 2) return 0;
    const double var = std::max(0.0, sum2 / n - mean() * mean());
    return std::sqrt(var / (n - 1));
  }
};

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void perplexity(const PplArgs& a) {
  if (a.kl && a.kl_base.empty())
    throw InvalidArgument("--kl-divergence needs --kl-divergence-base FILE (a base run saved earlier)");
  const auto protocol = a.all_tokens ? ppl::Protocol::AllTokens : ppl::Protocol::LlamaCpp;
  std::unique_ptr<ppl::BaseReader> base;
  if (a.kl) base = std::make_unique<ppl::BaseReader>(a.kl_base);  // bad files fail before the model loads
  if (!a.kl && a.file.empty()) throw InvalidArgument("-f FILE is required: the text to score");

  const model::KvTypes kv = kv_types(a.kv);  // a bad -ctk/-ctv fails before the model loads
  const auto lora_specs = parse_lora_specs(a.lora);
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const model::LoraSet lora = load_lora(lora_specs, engine->model());
  const int32_t n_vocab = engine->config().n_vocab;
  const int32_t bos = engine->tokenizer().bos_id();
  const bool use_bos = !a.no_bos && engine->tokenizer().add_bos_default() && bos >= 0;
  size_t n_text_tokens = 0;
  ppl::Chunks ch;
  if (!a.file.empty()) {
    const auto ids = engine->tokenizer().encode(read_file(a.file), false, false);
    n_text_tokens = ids.size();
    const int32_t n_ctx = base && !a.ctx_given ? base->chunks().n_ctx : a.n_ctx;
    ch = ppl::make_chunks(ids, n_ctx, a.chunks, protocol, use_bos ? bos : -1);
    if (ch.n_chunks() == 0)
      throw InvalidArgument(a.file + " has " + std::to_string(ids.size()) + " tokens, fewer than one chunk of " +
                            std::to_string(n_ctx) + " (-c)");
  }
  if (base) {
    const auto& bc = base->chunks();
    if (base->n_vocab() != n_vocab)
      throw InvalidArgument("the base run in " + a.kl_base + " has a vocabulary of " + std::to_string(base->n_vocab()) +
                            " tokens, this model " + std::to_string(n_vocab) + ": KL needs the same tokenizer");
    if (a.ctx_given && a.n_ctx != bc.n_ctx)
      throw InvalidArgument("-c " + std::to_string(a.n_ctx) + " differs from the base run's " +
                            std::to_string(bc.n_ctx) + " (drop -c: it comes from the base file)");
    if (!a.file.empty()) {
      // The text must cut into the same chunks as the base run's (same protocol and BOS too).
      const size_t n = std::min(ch.tokens.size(), bc.tokens.size());
      if (ch.first != bc.first || !std::equal(ch.tokens.begin(), ch.tokens.begin() + static_cast<std::ptrdiff_t>(n),
                                              bc.tokens.begin()))
        throw InvalidArgument("the chunks of " + a.file + " differ from those of the base run in " + a.kl_base +
                              " (another text, tokenizer, --all-tokens or --no-bos); drop -f to score the base's text");
    }
    ch = bc;  // the base's tokens are the text
    if (a.chunks >= 0 && a.chunks < ch.n_chunks()) ch.tokens.resize(static_cast<size_t>(a.chunks) * ch.n_ctx);
  }
  std::unique_ptr<ppl::BaseWriter> save;
  if (!a.kl && !a.kl_base.empty()) save = std::make_unique<ppl::BaseWriter>(a.kl_base, ch, n_vocab, a.kl_top_k);

  runtime::Session session(*engine, ch.n_ctx, kv);
  session.set_lora(lora);
  const int64_t n_chunks = ch.n_chunks();
  Moments nll, nll_base, kl, same;
  std::vector<double> kls, logp;
  ppl::BaseRecord rec;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const std::vector<int32_t> chunk(ch.tokens.begin() + c * ch.n_ctx, ch.tokens.begin() + (c + 1) * ch.n_ctx);
    const auto logits = session.evaluate_all(chunk);
    for (int32_t j = ch.first; j + 1 < ch.n_ctx; ++j) {
      ppl::log_softmax(&logits[static_cast<size_t>(j) * n_vocab], n_vocab, logp);
      const int32_t next = chunk[static_cast<size_t>(j) + 1];
      nll.add(-logp[static_cast<size_t>(next)]);
      if (save) save->add(logp, next);
      if (base) {
        base->next(rec);
        nll_base.add(-static_cast<double>(rec.logp_next));
        const auto pc = ppl::compare_position(rec, logp);
        kl.add(pc.kl);
        kls.push_back(pc.kl);
        same.add(pc.same_top1 ? 1 : 0);
      }
    }
    if (!a.json) {
      std::fprintf(stderr, "[%lld/%lld] perplexity %.4f", static_cast<long long>(c + 1),
                   static_cast<long long>(n_chunks), std::exp(nll.mean()));
      if (base) std::fprintf(stderr, ", mean KL %.6f, same top-1 %.2f%%", kl.mean(), 100 * same.mean());
      std::fprintf(stderr, "\n");
    }
  }
  if (save) save->close();

  const double ppl_v = std::exp(nll.mean()), ppl_err = ppl_v * nll.stderr_of_mean();
  const char* proto_name = a.all_tokens ? "all-tokens" : "llama.cpp";
  if (a.json) {
    nlohmann::ordered_json j = {{"perplexity", ppl_v},
                                {"perplexity_error", ppl_err},
                                {"protocol", proto_name},
                                {"n_tokens", n_text_tokens},
                                {"n_chunks", n_chunks},
                                {"n_ctx", ch.n_ctx},
                                {"first_scored", ch.first},
                                {"n_predictions", nll.n},
                                {"bos", use_bos},
                                {"cache_type_k", model::kv_type_name(kv.k)},
                                {"cache_type_v", model::kv_type_name(kv.v)},
                                {"kv_bytes_per_token", session.cache().bytes_per_token()}};
    if (save) j["kl_base_saved"] = a.kl_base, j["kl_top_k"] = a.kl_top_k;
    if (base) {
      const double pb = std::exp(nll_base.mean());
      j["perplexity_base"] = pb;
      j["perplexity_base_error"] = pb * nll_base.stderr_of_mean();
      j["kl_divergence"] = kl.mean();
      j["kl_divergence_error"] = kl.stderr_of_mean();
      j["kl_median"] = quantile(kls, 0.5);
      j["kl_p99"] = quantile(kls, 0.99);
      j["kl_max"] = kls.empty() ? 0 : *std::max_element(kls.begin(), kls.end());
      j["top1_agreement"] = same.mean();
      j["top1_agreement_error"] = same.stderr_of_mean();
      j["kl_top_k"] = base->top_k();
    }
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  std::printf("perplexity (%s protocol): %lld chunks of %d tokens, positions %d..%d scored (%lld predictions)%s\n",
              proto_name, static_cast<long long>(n_chunks), ch.n_ctx, ch.first, ch.n_ctx - 2,
              static_cast<long long>(nll.n), use_bos ? ", each chunk starting with BOS" : "");
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl_v, ppl_err);
  if (save)
    std::printf("saved the base run to %s (%s)\n", a.kl_base.c_str(),
                a.kl_top_k ? ("top " + std::to_string(a.kl_top_k) + " log-probs per position").c_str()
                           : "full log-probs per position");
  if (base) {
    const double pb = std::exp(nll_base.mean());
    std::printf("PPL(base)        : %.4f +/- %.5f\n", pb, pb * nll_base.stderr_of_mean());
    std::printf("PPL(this model)  : %.4f +/- %.5f\n", ppl_v, ppl_err);
    std::printf("Mean KL(base||this): %.6f +/- %.6f nats%s\n", kl.mean(), kl.stderr_of_mean(),
                base->top_k() ? (" (base's top " + std::to_string(base->top_k()) + " + rest)").c_str() : "");
    std::printf("Median KL        : %.6f\n99.0%% KL        : %.6f\nMaximum KL       : %.6f\n", quantile(kls, 0.5),
                quantile(kls, 0.99), kls.empty() ? 0 : *std::max_element(kls.begin(), kls.end()));
    std::printf("Same top-1       : %.3f +/- %.3f %%\n", 100 * same.mean(), 100 * same.stderr_of_mean());
  }
}

Registrar reg("perplexity", "Perplexity of a model on a text file (llama-perplexity's protocol), KL-divergence",
              [](CLI::App& app) {
                auto a = std::make_shared<PplArgs>();
                app.add_option("-m,--model", a->model, model_help());
                app.add_option("-f,--file", a->file, "Text file (with --kl-divergence the base file holds the text)");
                auto* ctx = app.add_option("-c,--ctx-size", a->n_ctx, "Tokens per chunk")->capture_default_str();
                app.add_option("--chunks", a->chunks, "Max chunks (-1 = all)")->capture_default_str();
                app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
                app.add_flag("--json", a->json, "Print one JSON object");
                app.add_flag("--no-bos", a->no_bos,
                             "Do not start chunks with BOS even if the model's tokenizer asks for it");
                app.add_flag("--all-tokens", a->all_tokens,
                             "Score every position of a chunk (edgellm's earlier protocol), not only its second half");
                app.add_option("--kl-divergence-base", a->kl_base,
                               "Save this run's log-probs to FILE, or with --kl-divergence compare against FILE");
                app.add_flag("--kl-divergence", a->kl,
                             "Compare with the base run in --kl-divergence-base: KL, same top-1, both perplexities");
                app.add_option("--kl-top-k", a->kl_top_k,
                               "Log-probs saved per position: the base's top K plus the rest as one bucket "
                               "(0 = the full distribution)")
                    ->capture_default_str();
                add_exact_flag(app);
                add_kv_type_flags(app, a->kv);
                add_lora_flags(app, a->lora);
                app.callback([a, ctx] {
                  a->ctx_given = ctx->count() > 0;
                  perplexity(*a);
                });
              });

}  // namespace
}  // namespace edgellm::cli
