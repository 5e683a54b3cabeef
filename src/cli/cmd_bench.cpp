// edgellm bench: llama-bench-style prefill (ppN) and decode (tgN) speed, optionally after N tokens
// already in the cache (-d, "@ dN"), with the machine's memory bandwidth and int8 multiply-add
// peak measured in the same run: decode is shown as a fraction of the memory roofline (weights
// plus the KV cache read at that depth), every test as a fraction of the compute peak.
// On a shared machine the bandwidth left by other tenants changes from second to second (30 to
// 67 GB/s seen on one VM within minutes), so besides the best rate at the start of the run,
// each decode repetition is paired with bandwidth samples taken just before and after it: the
// paired fraction says how close decode came to what the memory delivered at that time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <map>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/bench_run.h"
#include "cli/bench_spec.h"
#include "cli/command.h"
#include "cli/common.h"
#include "model/quantize.h"
#include "ops/ops.h"
#include "runtime/compute_peak.h"
#include "runtime/membw.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

constexpr int kVerifyPasses = 8;  // passes per repetition of a vN test

struct BenchArgs {
  std::string model;
  std::string prompts = "512", gens = "128", threads, parallel = "1", depths = "0", verifies;
  int32_t reps = 5;
  bool json = false;
  bool fill_random = false;
  KvTypeFlags kv;
  // Speculative decoding (bench_spec.h): plain vs speculative decode of a chat prompt.
  bool lookup = false;
  std::string draft, spec_prompt, spec_file;
  int32_t draft_max = 8;
  DraftSpeed draft_speed;
  bool spec_learn_cost = false;
  const CLI::Option* reps_opt = nullptr;
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

void bench_spec(const BenchArgs& a) {
  SpecBenchArgs s;
  s.model = a.model;
  s.draft = a.draft;
  s.lookup = a.lookup;
  if (!a.spec_prompt.empty() && !a.spec_file.empty()) throw InvalidArgument("--spec-prompt or --spec-file: one of them");
  s.prompt = a.spec_file.empty() ? a.spec_prompt : read_file(a.spec_file);
  const auto gens = parse_list(a.gens, "-n");
  if (gens.size() != 1) throw InvalidArgument("with --lookup / --draft, -n takes one length");
  s.n_gen = gens[0];
  if (!a.threads.empty()) {
    const auto t = parse_list(a.threads, "-t");
    if (t.size() != 1 || t[0] < 1) throw InvalidArgument("with --lookup / --draft, -t takes one thread count");
    s.threads = t[0];
  }
  s.reps = a.reps_opt && a.reps_opt->count() > 0 ? a.reps : 2;
  s.draft_max = a.draft_max;
  s.draft_speed = a.draft_speed;
  s.learn_cost = a.spec_learn_cost;
  s.json = a.json;
  bench_speculative(s);
}

void bench(const BenchArgs& a) {
  if (a.lookup || !a.draft.empty()) return bench_spec(a);
  if (a.reps < 1) throw InvalidArgument("-r must be at least 1");
  std::vector<int> thread_list = a.threads.empty() ? std::vector<int>{ops::ThreadPool::physical_cores()}
                                                   : parse_list(a.threads, "-t");
  const auto prompts = parse_list(a.prompts, "-p"), gens = parse_list(a.gens, "-n");
  const auto seqs = parse_list(a.parallel, "-P"), depths = parse_list(a.depths, "-d");
  const auto verifies = a.verifies.empty() ? std::vector<int>{} : parse_list(a.verifies, "-V");
  for (int nv : verifies)
    if (nv < 1 || nv > 64) throw InvalidArgument("-V values must be between 1 and 64");
  const int longest_verify = verifies.empty() ? 0 : *std::max_element(verifies.begin(), verifies.end());
  for (int ns : seqs)
    if (ns < 1 || ns > 256) throw InvalidArgument("-P values must be between 1 and 256");
  for (int nt : thread_list)
    if (nt < 1) throw InvalidArgument("-t values must be at least 1");

  const model::KvTypes kv = kv_types(a.kv);
  const std::string path = resolve_model(a.model);
  auto m = model::Model::load(path);
  const auto& c = m->config();
  for (int d : depths)
    for (int p : prompts)
      for (int g : gens)
        if (d > 0 && c.n_ctx_train > 0 && static_cast<int64_t>(d) + std::max({p, g, longest_verify}) + 8 > c.n_ctx_train)
          throw InvalidArgument("-d " + std::to_string(d) + " plus the test length exceeds the model's context (" +
                                std::to_string(c.n_ctx_train) + " tokens)");
  uint64_t n_params = 0;
  for (const auto& t : m->file().tensors()) n_params += t.n_elements();
  const double size_mib = m->file().file_size() / 1048576.0;
  const uint64_t weight_bytes = m->weights().matrix_bytes;
  const MatmulCost cost = matmul_cost(c);
  const std::string ftype = [&] {
    // The file's recipe (general.file_type), as llama-bench names it; files without one are
    // named by their most common matrix type.
    if (const auto ft = m->file().get_int("general.file_type")) {
      const std::string name = model::file_type_name(*ft);
      if (!name.empty()) return name;
    }
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
  const std::string isa = ops::active_isa();
  const runtime::Int8Loop peak_loop = runtime::int8_loop_for_isa(isa);
  runtime::Int8Loop vnni_loop{};
  const bool has_vnni = runtime::vnni_loop_for_isa(isa, vnni_loop);

  // One set of filled caches per depth, shared by all thread counts and tests.
  int longest = 8;
  for (int p : prompts) longest = std::max(longest, p);
  for (int g : gens) longest = std::max(longest, g);
  for (int v : verifies) longest = std::max(longest, v);
  std::map<int, std::unique_ptr<DepthCaches>> caches;
  for (int d : depths) caches.try_emplace(d, std::make_unique<DepthCaches>(*m, d, d + longest + 8, kv, a.fill_random));

  nlohmann::json results = nlohmann::json::array();
  if (!a.json) {
    std::printf("| model | size | params | isa | threads | test | t/s | mem GB/s | roofline t/s | of roofline |"
                " of best-bw roofline | GMAC/s | of int8 peak |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  }
  std::mt19937 rng(1234);
  for (int nt : thread_list) {
    ops::ThreadPool pool(nt);
    runtime::ReadBandwidthProbe probe(pool);
    const auto bw = probe.sample(5);
    // Many short passes: on a shared machine the best one is the one least disturbed by others.
    const auto peak = runtime::measure_int8_peak(pool, peak_loop, 7, 0.05);
    const auto vnni = has_vnni ? runtime::measure_int8_peak(pool, vnni_loop, 7, 0.05) : runtime::ComputePeak{};
    std::fprintf(stderr, "bench: %d thread(s): read %.1f GB/s; int8 peak %.1f GMAC/s (%s)", nt,
                 bw.bytes_per_second / 1e9, peak.macs_per_second / 1e9, runtime::int8_loop_name(peak_loop));
    if (has_vnni) std::fprintf(stderr, ", %.1f GMAC/s (%s)", vnni.macs_per_second / 1e9, runtime::int8_loop_name(vnni_loop));
    std::fprintf(stderr, "\n");
    struct Test {
      int np, ng, ns, d, nv = 0;  // nv > 0: verification passes of nv tokens (run_verify)
    };
    std::vector<Test> tests;
    for (int d : depths) {
      for (int p : prompts)
        if (p > 0) tests.push_back({p, 0, 1, d});
      for (int g : gens)
        if (g > 0)
          for (int ns : seqs) tests.push_back({0, g, ns, d});
      for (int v : verifies) tests.push_back({0, 0, 1, d, v});
    }
    std::map<int, double> verify_one;  // depth -> t/s of v1, for the cost of the longer passes
    for (auto [np, ng, ns, d, nv] : tests) {
      DepthCaches& dc = *caches.at(d);
      const bool verify = nv > 0;
      if (verify) run_verify(*m, pool, dc, nv, 2, rng);  // warm-up (and the untimed fill)
      else run_once(*m, pool, dc, std::min(np, 32), std::min(ng, 8), ns, rng);
      // The roofline is per sequence: a pass over several sequences reads the weights once.
      const bool decode = ng > 0, roof = decode && ns == 1;
      // Bytes one decode step reads: every weight matrix, and the keys and values at this depth.
      const uint64_t kv_bytes = decode ? kv_bytes_per_token(c, d, ng, kv) : 0;
      const uint64_t bytes_per_token = weight_bytes + kv_bytes;
      const double best_roofline = bw.bytes_per_second / bytes_per_token;
      std::vector<double> ts, paired_bw, paired_fraction;
      for (int r = 0; r < a.reps; ++r) {
        const double before = roof ? probe.sample(2).bytes_per_second : 0;
        ts.push_back(verify ? run_verify(*m, pool, dc, nv, kVerifyPasses, rng) : run_once(*m, pool, dc, np, ng, ns, rng));
        if (!roof) continue;
        const double bw_rep = 0.5 * (before + probe.sample(2).bytes_per_second);
        paired_bw.push_back(bw_rep / 1e9);
        paired_fraction.push_back(ts.back() / (bw_rep / bytes_per_token));
      }
      const Stats s = stats(ts);
      const double mem_gbs = roof ? stats(paired_bw).mean : bw.bytes_per_second / 1e9;
      const double roofline = mem_gbs * 1e9 / bytes_per_token;
      // Multiply-adds per token of the weight matmuls: prefill computes logits for its last
      // token only, decode and verification for every token.
      const double macs_per_token =
          static_cast<double>(cost.layer_macs_per_token) +
          static_cast<double>(cost.output_macs_per_row) / (decode || verify ? 1.0 : static_cast<double>(np));
      const double gmacs = s.mean * macs_per_token / 1e9;
      // A non-default cache type is part of the test's name, so rows of several runs stay apart.
      const std::string kv_suffix = kv.k == io::TensorType::F32 && kv.v == io::TensorType::F32
                                        ? ""
                                        : " kv " + model::kv_type_name(kv.k) + "/" + model::kv_type_name(kv.v);
      const std::string depth_suffix = (d > 0 ? " @ d" + std::to_string(d) : "") + kv_suffix;
      const std::string test =
          (verify   ? "v" + std::to_string(nv)
           : decode ? "tg" + std::to_string(ng) + (ns > 1 ? " x" + std::to_string(ns) : "")
                    : "pp" + std::to_string(np)) +
          depth_suffix;
      nlohmann::json j = {{"model_filename", path}, {"model_type", model_type},
                          {"model_size", m->file().file_size()}, {"model_n_params", n_params},
                          {"isa", isa}, {"n_prompt", np}, {"n_gen", ng}, {"n_verify", nv}, {"n_depth", d},
                          {"n_threads", nt},
                          {"n_parallel", ns}, {"type_k", model::kv_type_name(kv.k)},
                          {"type_v", model::kv_type_name(kv.v)},
                          {"avg_ts", s.mean}, {"stddev_ts", s.sd}, {"samples_ts", s.samples},
                          {"mem_bandwidth_gbs", mem_gbs},
                          {"mem_bandwidth_best_gbs", bw.bytes_per_second / 1e9},
                          {"weight_bytes_per_token", weight_bytes}, {"kv_bytes_per_token", kv_bytes},
                          {"bytes_per_token", bytes_per_token},
                          {"matmul_macs_per_token", macs_per_token}, {"matmul_gmacs", gmacs},
                          {"int8_peak_loop", runtime::int8_loop_name(peak_loop)},
                          {"int8_peak_gmacs", peak.macs_per_second / 1e9},
                          {"compute_peak_fraction", gmacs * 1e9 / peak.macs_per_second}};
      if (has_vnni) {
        j["int8_peak_vnni_loop"] = runtime::int8_loop_name(vnni_loop);
        j["int8_peak_vnni_gmacs"] = vnni.macs_per_second / 1e9;
        j["compute_peak_fraction_vnni"] = gmacs * 1e9 / vnni.macs_per_second;
      }
      if (verify) {
        // A pass of nv tokens in one-token passes (v1 at this depth timed before): the extra
        // cost of each drafted token is (that - 1) / (nv - 1).
        if (nv == 1) verify_one[d] = s.mean;
        if (nv > 1 && verify_one.count(d)) {
          const double rel = nv * verify_one[d] / s.mean;
          j["pass_cost_vs_v1"] = rel;
          j["cost_per_extra_token"] = (rel - 1) / (nv - 1);
          std::fprintf(stderr, "bench: v%d%s: a pass costs %.3f one-token passes, %.3f per extra token\n", nv,
                       depth_suffix.c_str(), rel, (rel - 1) / (nv - 1));
        }
      }
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
        std::printf("| %s | %.2f MiB | %s | %s | %d | %s | %.2f ± %.2f | %.1f | %s | %s | %s | %.1f | %s |\n",
                    model_type.c_str(), size_mib, params_str, isa.c_str(), nt, test.c_str(), s.mean, s.sd, mem_gbs,
                    roof ? std::to_string(static_cast<int>(roofline)).c_str() : "",
                    roof ? pct(j["roofline_fraction"].get<double>()).c_str() : "",
                    roof ? pct(s.mean / best_roofline).c_str() : "", gmacs,
                    pct(j["compute_peak_fraction"].get<double>()).c_str());
        std::fflush(stdout);
      }
    }
  }
  if (a.json) std::printf("%s\n", results.dump(2).c_str());
}

Registrar reg("bench", "Prefill and decode speed against the memory roofline and the int8 compute peak",
              [](CLI::App& app) {
                auto a = std::make_shared<BenchArgs>();
                app.add_option("-m,--model", a->model, "GGUF model (default: the cached default model)");
                app.add_option("-p,--n-prompt", a->prompts, "Prompt lengths, comma-separated")->capture_default_str();
                app.add_option("-n,--n-gen", a->gens, "Generated lengths, comma-separated")->capture_default_str();
                app.add_option("-t,--threads", a->threads, "Thread counts, comma-separated (default: physical cores)");
                app.add_option("-P,--parallel", a->parallel,
                               "Sequences decoded together in tg tests, comma-separated (aggregate t/s)")
                    ->capture_default_str();
                app.add_option("-V,--n-verify", a->verifies,
                               "Speculative verification passes: tokens per pass, comma-separated (every row's "
                               "logits, the cache rolled back after each pass; list 1 first to get each length's "
                               "cost in one-token passes)");
                app.add_option("-d,--n-depth", a->depths,
                               "Tokens already in the cache before each test (filled untimed), comma-separated")
                    ->capture_default_str();
                app.add_flag("--fill-random", a->fill_random,
                             "Fill the -d depth with random keys and values instead of a prefill of random tokens "
                             "(same bytes read by decode; seconds instead of minutes at 16K)");
                a->reps_opt = app.add_option("-r,--repetitions", a->reps, "Repetitions per test (with --lookup / "
                                             "--draft: pairs of plain and speculative runs, default 2)")
                                  ->capture_default_str();
                app.add_flag("--lookup", a->lookup,
                             "Plain vs speculative greedy decode with prompt-lookup drafts of a chat prompt "
                             "(--spec-prompt; -n tokens, one -t): t/s of both, acceptance, tokens per pass");
                app.add_option("--draft", a->draft, "... with drafts from this model of the same vocabulary");
                app.add_option("--draft-max", a->draft_max, "Longest draft per pass")->capture_default_str();
                add_draft_speed_flags(app, a->draft_speed);
                app.add_flag("--spec-learn-cost", a->spec_learn_cost,
                             "Price drafts with a cost learnt from the generation's pass times instead of pass "
                             "costs measured before it (the older policy, for A/B)");
                app.add_option("--spec-prompt", a->spec_prompt,
                               "The user message of --lookup / --draft runs (default: an edit of a given function)");
                app.add_option("--spec-file", a->spec_file, "... read from this file");
                app.add_flag("--json", a->json, "One JSON array of results");
                add_exact_flag(app);
                add_kv_type_flags(app, a->kv);
                app.callback([a] { bench(*a); });
              });

}  // namespace
}  // namespace edgellm::cli
