// edgellm bench: llama-bench-style prefill (ppN) and decode (tgN) speed, with the machine's
// memory bandwidth measured in the same run and decode shown as a fraction of the roofline.
// On a shared machine the bandwidth left by other tenants changes from second to second (30 to
// 67 GB/s seen on one VM within minutes), so besides the best rate at the start of the run,
// each decode repetition is paired with bandwidth samples taken just before and after it: the
// paired fraction says how close decode came to what the memory delivered at that time.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/common.h"
#include "ops/ops.h"
#include "runtime/membw.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string prompts = "512", gens = "128", threads, parallel = "1";
  int32_t reps = 5;
  bool json = false;
};

std::vector<int> parse_list(const std::string& s, const char* flag) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const int v = std::stoi(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw InvalidArgument(std::string(flag) + " takes non-negative integers separated by commas, got '" + s + "'");
    }
  }
  return out;
}

struct Stats {
  double mean = 0, sd = 0;
  std::vector<double> samples;
};

Stats stats(std::vector<double> v) {
  Stats s;
  s.samples = v;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / (v.size() - 1)) : 0.0;
  return s;
}

// Tokens/s of one run: n_prompt tokens in one batched pass (pp) or n_gen decode steps (tg),
// from an empty cache, logits computed as in real use. With n_seq > 1 each decode step is one
// pass over n_seq independent sequences (own KV caches), as the server's continuous batching
// runs them; the figure is then the aggregate over all sequences.
double run_once(const model::Model& m, ops::ThreadPool& pool, int n_prompt, int n_gen, int n_seq,
                std::mt19937& rng) {
  const auto& c = m.config();
  std::vector<std::unique_ptr<model::KvCache>> kv;
  for (int s = 0; s < n_seq; ++s) kv.push_back(std::make_unique<model::KvCache>(c, std::max(1, n_prompt + n_gen)));
  model::Workspace ws;
  std::vector<float> logits(static_cast<size_t>(c.n_vocab) * n_seq);
  std::uniform_int_distribution<int> tok(0, c.n_vocab - 1);
  model::Batch b;
  const auto t0 = std::chrono::steady_clock::now();
  if (n_prompt > 0) {
    for (int i = 0; i < n_prompt; i += 512) {
      b.clear();
      for (int j = i; j < std::min(n_prompt, i + 512); ++j) b.add(tok(rng), j, kv[0].get(), j == n_prompt - 1);
      m.forward(b, ws, pool, logits.data());
    }
  }
  for (int i = 0; i < n_gen; ++i) {
    b.clear();
    for (int s = 0; s < n_seq; ++s) b.add(tok(rng), n_prompt + i, kv[static_cast<size_t>(s)].get(), true);
    m.forward(b, ws, pool, logits.data());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return (n_prompt > 0 ? n_prompt : static_cast<double>(n_gen) * n_seq) / s;
}

void bench(const BenchArgs& a) {
  if (a.reps < 1) throw InvalidArgument("-r must be at least 1");
  const std::string path = resolve_model(a.model);
  auto m = model::Model::load(path);
  const auto& c = m->config();
  uint64_t n_params = 0;
  for (const auto& t : m->file().tensors()) n_params += t.n_elements();
  const double size_mib = m->file().file_size() / 1048576.0;
  const uint64_t bytes_per_token = m->weights().matrix_bytes;
  const std::string ftype = [&] {
    // Most common matrix type names the file, like llama-bench's "Q4_1".
    std::map<std::string, uint64_t> by;
    for (const auto& t : m->file().tensors())
      if (t.ne.size() == 2) by[std::string(io::type_name(t.type))] += t.nbytes;
    std::string best;
    uint64_t most = 0;
    for (auto& [k, v] : by)
      if (v > most) most = v, best = k;
    return best;
  }();
  char params_str[32];
  std::snprintf(params_str, sizeof params_str, "%.2f M", n_params / 1e6);
  const std::string model_type = c.arch + " " + ftype;

  std::vector<int> thread_list = a.threads.empty() ? std::vector<int>{ops::ThreadPool::physical_cores()}
                                                   : parse_list(a.threads, "-t");
  const auto prompts = parse_list(a.prompts, "-p"), gens = parse_list(a.gens, "-n");
  const auto seqs = parse_list(a.parallel, "-P");
  for (int ns : seqs)
    if (ns < 1 || ns > 256) throw InvalidArgument("-P values must be between 1 and 256");
  nlohmann::json results = nlohmann::json::array();
  if (!a.json) {
    std::printf("| model | size | params | isa | threads | test | t/s | mem GB/s | roofline t/s | of roofline |"
                " of best-bw roofline |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  }
  std::mt19937 rng(1234);
  for (int nt : thread_list) {
    if (nt < 1) throw InvalidArgument("-t values must be at least 1");
    ops::ThreadPool pool(nt);
    runtime::ReadBandwidthProbe probe(pool);
    const auto bw = probe.sample(5);
    const double best_roofline = bw.bytes_per_second / bytes_per_token;
    struct Test {
      int np, ng, ns;
    };
    std::vector<Test> tests;
    for (int p : prompts)
      if (p > 0) tests.push_back({p, 0, 1});
    for (int g : gens)
      if (g > 0)
        for (int ns : seqs) tests.push_back({0, g, ns});
    for (auto [np, ng, ns] : tests) {
      run_once(*m, pool, std::min(np, 32), std::min(ng, 8), ns, rng);  // warm-up
      // The roofline is per sequence: a pass over several sequences reads the weights once.
      const bool decode = ng > 0, roof = decode && ns == 1;
      std::vector<double> ts, paired_bw, paired_fraction;
      for (int r = 0; r < a.reps; ++r) {
        const double before = roof ? probe.sample(2).bytes_per_second : 0;
        ts.push_back(run_once(*m, pool, np, ng, ns, rng));
        if (!roof) continue;
        const double bw_rep = 0.5 * (before + probe.sample(2).bytes_per_second);
        paired_bw.push_back(bw_rep / 1e9);
        paired_fraction.push_back(ts.back() / (bw_rep / bytes_per_token));
      }
      const Stats s = stats(ts);
      const double mem_gbs = roof ? stats(paired_bw).mean : bw.bytes_per_second / 1e9;
      const double roofline = mem_gbs * 1e9 / bytes_per_token;
      const std::string test =
          decode ? "tg" + std::to_string(ng) + (ns > 1 ? " x" + std::to_string(ns) : "") : "pp" + std::to_string(np);
      nlohmann::json j = {{"model_filename", path}, {"model_type", model_type},
                          {"model_size", m->file().file_size()}, {"model_n_params", n_params},
                          {"isa", ops::active_isa()}, {"n_prompt", np}, {"n_gen", ng}, {"n_threads", nt},
                          {"n_parallel", ns},
                          {"avg_ts", s.mean}, {"stddev_ts", s.sd}, {"samples_ts", s.samples},
                          {"mem_bandwidth_gbs", mem_gbs},
                          {"mem_bandwidth_best_gbs", bw.bytes_per_second / 1e9},
                          {"bytes_per_token", bytes_per_token}};
      if (roof) {
        // Paired: mean over repetitions of t/s / (bandwidth sampled around it / bytes per token).
        const Stats f = stats(paired_fraction);
        j["roofline_ts"] = roofline;
        j["roofline_fraction"] = f.mean;
        j["roofline_fraction_sd"] = f.sd;
        j["mem_bandwidth_samples_gbs"] = paired_bw;
        // Against the best bandwidth of the run (the stricter figure when the machine is busy).
        j["roofline_best_ts"] = best_roofline;
        j["roofline_fraction_best_bw"] = s.mean / best_roofline;
      }
      results.push_back(j);
      if (!a.json) {
        auto pct = [](double f) { return std::to_string(static_cast<int>(std::lround(100 * f))) + "%"; };
        std::printf("| %s | %.2f MiB | %s | %s | %d | %s | %.2f ± %.2f | %.1f | %s | %s | %s |\n",
                    model_type.c_str(), size_mib, params_str, ops::active_isa().c_str(), nt, test.c_str(), s.mean, s.sd,
                    mem_gbs, roof ? std::to_string(static_cast<int>(roofline)).c_str() : "",
                    roof ? pct(j["roofline_fraction"].get<double>()).c_str() : "",
                    roof ? pct(s.mean / best_roofline).c_str() : "");
        std::fflush(stdout);
      }
    }
  }
  if (a.json) std::printf("%s\n", results.dump(2).c_str());
}

Registrar reg("bench", "Prefill and decode speed, and decode as a fraction of the memory roofline",
              [](CLI::App& app) {
                auto a = std::make_shared<BenchArgs>();
                app.add_option("-m,--model", a->model, "GGUF model (default: the cached default model)");
                app.add_option("-p,--n-prompt", a->prompts, "Prompt lengths, comma-separated")->capture_default_str();
                app.add_option("-n,--n-gen", a->gens, "Generated lengths, comma-separated")->capture_default_str();
                app.add_option("-t,--threads", a->threads, "Thread counts, comma-separated (default: physical cores)");
                app.add_option("-P,--parallel", a->parallel,
                               "Sequences decoded together in tg tests, comma-separated (aggregate t/s)")
                    ->capture_default_str();
                app.add_option("-r,--repetitions", a->reps, "Repetitions per test")->capture_default_str();
                app.add_flag("--json", a->json, "One JSON array of results");
                add_exact_flag(app);
                app.callback([a] { bench(*a); });
              });

}  // namespace
}  // namespace edgellm::cli
