#include "cli/bench_spec.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "runtime/draft_model.h"
#include "runtime/pass_cost.h"
#include "runtime/speculative.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

// A draft model's one-token pass (its head cut to `head_rows`) over the target's, each timed between
// two of the other's at 64 tokens of context; the median of `rounds`. Its bytes alone
// (guess_cost_from_bytes) undercount it: a small model's many thin matrices and per-layer
// synchronisation cost more time per byte, and on text where its drafts are marginal (open chat)
// that difference decides whether drafting pays.
float measure_guess_cost(const runtime::Engine& target, const runtime::Engine& draft, int32_t head_rows,
                         int32_t rounds) {
  constexpr int32_t kDepth = 64;
  std::vector<int32_t> ctx(kDepth);
  const int32_t n_vocab = std::min(target.config().n_vocab, draft.config().n_vocab);
  for (int32_t i = 0; i < kDepth; ++i) ctx[static_cast<size_t>(i)] = static_cast<int32_t>((7919LL * i + 13) % n_vocab);
  runtime::Session ts(target, kDepth + 2), ds(draft, kDepth + 2);
  ds.set_head_rows(head_rows);
  std::vector<float> tl(static_cast<size_t>(target.config().n_vocab)), dl(static_cast<size_t>(draft.config().n_vocab));
  ts.load_prompt(ctx, tl.data());
  ds.load_prompt(ctx, dl.data());
  auto timed = [&](runtime::Session& s, std::vector<float>& logits) {
    const auto t0 = std::chrono::steady_clock::now();
    s.extend({ctx[0]}, logits.data());
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.truncate(kDepth);
    return t;
  };
  timed(ts, tl), timed(ds, dl);  // warm-up
  std::vector<double> ratios;
  double before = timed(ts, tl);
  for (int32_t r = 0; r < rounds; ++r) {
    const double d = timed(ds, dl), after = timed(ts, tl);
    ratios.push_back(d / (0.5 * (before + after)));
    before = after;
  }
  std::nth_element(ratios.begin(), ratios.begin() + static_cast<std::ptrdiff_t>(ratios.size() / 2), ratios.end());
  return static_cast<float>(ratios[ratios.size() / 2]);
}

// What the draft-length policy weighs (runtime/pass_cost.h): the target's passes of 1..draft_max+1
// tokens timed side by side (`rounds` times; about a second each on a 1.5B at 2 threads), and a
// draft model's guess: its pass timed against the target's, never below what its bytes say. Only the
// bench measures them: `run` and `serve` learn the cost from their own passes rather than wait 1-2 s
// before the first token.
runtime::PassCosts measure_spec_costs(const runtime::Engine& target, const runtime::Proposer& proposer,
                                      int32_t draft_max, int32_t rounds) {
  runtime::PassCosts c = runtime::measure_pass_costs(target, std::max(1, draft_max + 1), rounds);
  if (const auto* d = dynamic_cast<const runtime::DraftModelProposer*>(&proposer))
    c.guess = std::max(runtime::guess_cost_from_bytes(target, d->engine(), d->head_rows()),
                       measure_guess_cost(target, d->engine(), d->head_rows(), 5 * rounds));
  return c;
}

// Input-grounded by default: an edit of given code, where the answer repeats its input.
const char* kDefaultPrompt =
    "Rename the function parse_config to load_settings and the variable config to settings everywhere in this "
    "code. Reply with the whole code only.\n\n"
    "def parse_config(path):\n"
    "    config = {}\n"
    "    with open(path) as f:\n"
    "        for line in f:\n"
    "            line = line.strip()\n"
    "            if not line or line.startswith(\"#\"):\n"
    "                continue\n"
    "            key, value = line.split(\"=\", 1)\n"
    "            config[key.strip()] = value.strip()\n"
    "    return config\n";

struct Totals {
  int64_t tokens = 0, passes = 0, drafted = 0, accepted = 0;
  double seconds = 0;
  void add(const runtime::GenerateResult& r) {
    tokens += r.n_generated;
    passes += r.n_decode_passes;
    drafted += r.n_drafted;
    accepted += r.n_draft_accepted;
    seconds += r.decode_seconds;
  }
  double rate() const { return seconds > 0 ? tokens / seconds : 0.0; }
};

}  // namespace

void bench_speculative(const SpecBenchArgs& a) {
  if (a.lookup == !a.draft.empty()) throw InvalidArgument("bench speculates with --lookup or --draft MODEL: one of them");
  if (a.n_gen < 1) throw InvalidArgument("-n must be at least 1 with --lookup / --draft");
  if (a.reps < 1) throw InvalidArgument("-r must be at least 1");
  if (a.draft_max < 0 || a.draft_max > 64) throw InvalidArgument("--draft-max must be between 0 and 64");
  const std::string path = resolve_model(a.model);
  auto engine = runtime::Engine::load(path, {a.threads});
  const std::string text = a.prompt.empty() ? kDefaultPrompt : a.prompt;
  const auto ids = engine->tokenize_chat({{"user", text}}, true);
  const int32_t n_ctx = static_cast<int32_t>(ids.size()) + a.n_gen + 16;
  runtime::SpeculativeOptions so;
  so.draft_max = a.draft_max;
  if (a.lookup) so.proposer = std::make_shared<runtime::PromptLookupProposer>();
  else so.proposer = make_drafter(*engine, resolve_model(a.draft), n_ctx, a.draft_speed);
  // Measured once, before the timed runs (which it would otherwise slow by the same time).
  if (!a.learn_cost) so.costs = measure_spec_costs(*engine, *so.proposer, a.draft_max, 3);
  runtime::GenerateParams gp;
  gp.sampling.temperature = 0.0f;
  gp.max_tokens = a.n_gen;

  // Warm-up: pages of both models in memory, caches allocated once.
  {
    runtime::GenerateParams warm = gp;
    warm.max_tokens = 4;
    runtime::Session s(*engine, n_ctx);
    runtime::generate_speculative(s, ids, warm, so);
  }
  Totals plain, spec;
  bool same = true;
  nlohmann::json pairs = nlohmann::json::array();  // t/s of each A/B pair, for ratios robust to drift
  for (int32_t r = 0; r < a.reps; ++r) {
    runtime::GenerateResult p, q;
    // Fresh sessions (no prefix reuse between runs); the order alternates so drift cancels.
    auto run_plain = [&] {
      runtime::Session s(*engine, n_ctx);
      p = s.generate(ids, gp);
    };
    auto run_spec = [&] {
      runtime::Session s(*engine, n_ctx);
      q = runtime::generate_speculative(s, ids, gp, so);
    };
    if (r % 2 == 0) run_plain(), run_spec();
    else run_spec(), run_plain();
    plain.add(p);
    spec.add(q);
    pairs.push_back({{"plain_ts", p.decode_seconds > 0 ? p.n_generated / p.decode_seconds : 0.0},
                     {"speculative_ts", q.decode_seconds > 0 ? q.n_generated / q.decode_seconds : 0.0},
                     {"tokens", q.n_generated}, {"passes", q.n_decode_passes}, {"drafted", q.n_drafted},
                     {"accepted", q.n_draft_accepted}});
    same = same && p.tokens == q.tokens;
  }
  const double speedup = plain.rate() > 0 ? spec.rate() / plain.rate() : 0.0;
  const double acceptance = spec.drafted > 0 ? static_cast<double>(spec.accepted) / spec.drafted : 0.0;
  const double per_pass = spec.passes > 0 ? static_cast<double>(spec.tokens - a.reps) / spec.passes : 0.0;
  const std::string proposer = a.lookup ? "lookup" : a.draft;
  if (a.json) {
    nlohmann::json j = {{"model_filename", path}, {"proposer", proposer}, {"n_threads", engine->pool().size()},
                        {"n_prompt", ids.size()}, {"n_gen", a.n_gen}, {"repetitions", a.reps},
                        {"draft_max", a.draft_max}, {"plain_ts", plain.rate()}, {"speculative_ts", spec.rate()},
                        {"speedup", speedup}, {"drafted", spec.drafted}, {"accepted", spec.accepted},
                        {"acceptance", acceptance}, {"tokens_per_pass", per_pass}, {"same_tokens", same},
                        {"pairs", pairs}, {"cost_policy", a.learn_cost ? "learnt" : "measured"}};
    if (so.costs.known()) j["pass_costs"] = {{"verify", so.costs.verify}, {"guess", so.costs.guess}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("| model | proposer | threads | test | plain t/s | speculative t/s | speed-up | accepted | tokens/pass |"
              " same tokens |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  std::printf("| %s | %s | %d | tg%d after %zu | %.2f | %.2f | %.2fx | %.0f%% (%lld/%lld) | %.2f | %s |\n",
              path.substr(path.find_last_of('/') + 1).c_str(), proposer.c_str(), engine->pool().size(), a.n_gen,
              ids.size(), plain.rate(), spec.rate(), speedup, 100 * acceptance, static_cast<long long>(spec.accepted),
              static_cast<long long>(spec.drafted), per_pass, same ? "yes" : "NO");
}

}  // namespace edgellm::cli
