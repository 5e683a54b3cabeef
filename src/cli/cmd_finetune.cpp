// edgellm finetune: a LoRA adapter trained on the device from chat JSONL (src/train/).
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/command.h"
#include "cli/common.h"
#include "train/data.h"
#include "io/tensor_type.h"
#include "train/finetune.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) { g_stop.store(true); }

struct FinetuneArgs {
  std::string model, data, eval, out, checkpoint, resume, targets = "all", out_type = "f32", kl_data, layers = "all";
  int32_t rank = 8, epochs = 1, batch = 1, ctx = 1024, threads = 0, save_every = 0, save_adapter_every = 0;
  float alpha = 16.0f, lr = 2e-4f, weight_decay = 0.0f, clip = 1.0f, kl_weight = 1.0f, kl_data_ce = 1.0f,
        kl_margin_boost = 0.0f, kl_margin_tau = 0.1f, hinge_weight = 0.0f, hinge_margin_cap = 0.5f;
  uint64_t seed = 1;
  bool dry_run = false, save_epochs = false, no_transpose = false;
};

// --save-epochs: the adapter after epoch n next to --out (memory.gguf -> memory.epoch2.gguf), so the
// epoch with the best eval loss can be picked afterwards.
std::string epoch_path(const std::string& out, int epoch) {
  return std::filesystem::path(out).replace_extension(".epoch" + std::to_string(epoch) + ".gguf").string();
}
// --save-adapter-every: the adapter after step n (memory.gguf -> memory.step140.gguf), for points between epochs.
std::string step_path(const std::string& out, int64_t step) {
  return std::filesystem::path(out).replace_extension(".step" + std::to_string(step) + ".gguf").string();
}

// The first example as text with the learned tokens between « and » (--dry-run).
std::string marked(const train::Example& ex, const tokenizer::Tokenizer& tok) {
  std::string out;
  for (size_t b = 0; b < ex.tokens.size();) {
    size_t e = b;
    while (e < ex.tokens.size() && ex.target[e] == ex.target[b]) ++e;
    const std::string text = tok.decode(std::vector<int32_t>(ex.tokens.begin() + b, ex.tokens.begin() + e));
    out += ex.target[b] ? "\u00ab" + text + "\u00bb" : text;
    b = e;
  }
  return out;
}

std::string duration(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%" PRId64 "h%02" PRId64 "m", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%" PRId64 "m%02" PRId64 "s", t / 60, t % 60);
  return buf;
}

// Peak resident memory of this process (VmHWM), in MiB; 0 where /proc is not available.
double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// Renders every conversation; over-long ones are skipped with one warning naming their lines.
std::vector<train::Example> examples(const std::vector<train::Conversation>& convs, const std::string& name,
                                     const runtime::Engine& engine, int32_t max_tokens) {
  std::vector<train::Example> out;
  std::vector<std::string> long_lines, errors;
  for (const auto& c : convs) {
    try {
      train::Example ex = train::render_conversation(c, engine.formatter(), engine.tokenizer());
      if (static_cast<int32_t>(ex.tokens.size()) > max_tokens) {
        long_lines.push_back(std::to_string(c.line) + " (" + std::to_string(ex.tokens.size()) + " tokens)");
        continue;
      }
      out.push_back(std::move(ex));
    } catch (const InvalidArgument& e) {
      errors.push_back(name + ":" + e.what());
    }
  }
  if (!errors.empty()) {
    std::string msg = "cannot render " + std::to_string(errors.size()) + " conversation(s):";
    for (size_t i = 0; i < errors.size() && i < 20; ++i) msg += "\n  " + errors[i];
    throw train::DataError(msg);
  }
  if (!long_lines.empty()) {
    std::string list;
    for (size_t i = 0; i < long_lines.size() && i < 10; ++i) list += (i ? ", " : "") + long_lines[i];
    if (long_lines.size() > 10) list += ", ...";
    std::fprintf(stderr, "warning: %s: skipped %zu conversation(s) longer than --ctx %d tokens: line %s\n",
                 name.c_str(), long_lines.size(), max_tokens, list.c_str());
  }
  if (out.empty()) throw train::DataError(name + ": no conversation fits in --ctx " + std::to_string(max_tokens));
  return out;
}

void finetune(const FinetuneArgs& a) {
  // The data is checked, every line, before the model is even loaded.
  const auto train_convs = train::read_chat_jsonl(a.data);
  const auto eval_convs = a.eval.empty() ? std::vector<train::Conversation>{} : train::read_chat_jsonl(a.eval);
  const auto kl_convs = a.kl_data.empty() ? std::vector<train::Conversation>{} : train::read_chat_jsonl(a.kl_data);
  if (!std::isfinite(a.kl_weight) || a.kl_weight < 0) throw InvalidArgument("--kl-weight must be a number >= 0");
  if (!std::isfinite(a.kl_data_ce) || a.kl_data_ce < 0) throw InvalidArgument("--kl-data-ce must be a number >= 0");
  if (a.kl_data_ce != 1.0f && a.kl_data.empty()) throw InvalidArgument("--kl-data-ce needs --kl-data");
  if (!a.kl_data.empty() && a.kl_data_ce == 0 && a.kl_weight == 0 && a.hinge_weight == 0)
    throw InvalidArgument("--kl-data-ce 0 with --kl-weight 0 leaves nothing to learn from --kl-data");
  if (!std::isfinite(a.kl_margin_boost) || a.kl_margin_boost < 0)
    throw InvalidArgument("--kl-margin-boost must be a number >= 0");
  if (!std::isfinite(a.kl_margin_tau) || !(a.kl_margin_tau > 0))
    throw InvalidArgument("--kl-margin-tau must be a number > 0");
  if (a.kl_margin_boost > 0 && (a.kl_data.empty() || a.kl_weight == 0))
    throw InvalidArgument("--kl-margin-boost weights the KL term: it needs --kl-data and --kl-weight > 0");
  if (!std::isfinite(a.hinge_weight) || a.hinge_weight < 0) throw InvalidArgument("--hinge-weight must be a number >= 0");
  if (!std::isfinite(a.hinge_margin_cap) || !(a.hinge_margin_cap > 0))
    throw InvalidArgument("--hinge-margin-cap must be a number > 0");
  if (a.hinge_weight > 0 && a.kl_data.empty())
    throw InvalidArgument("--hinge-weight holds the base's choices on --kl-data's target tokens: it needs --kl-data");
  if (a.save_adapter_every < 0) throw InvalidArgument("--save-adapter-every must be >= 0");
  if (a.ctx < 2) throw InvalidArgument("--ctx must be at least 2");
  if (a.out.empty() && !a.dry_run) throw InvalidArgument("--out is required");
  const auto out_type = io::type_from_name(a.out_type);
  if (!out_type || (*out_type != io::TensorType::F32 && *out_type != io::TensorType::F16 &&
                    *out_type != io::TensorType::Q8_0))
    throw InvalidArgument("--out-type must be f32, f16 or q8_0, not '" + a.out_type + "'");
  train::LoraTrainConfig cfg;
  cfg.rank = a.rank;
  cfg.alpha = a.alpha;
  cfg.targets = train::parse_lora_targets(a.targets);
  cfg.seed = a.seed;
  if (!(a.lr > 0) || !std::isfinite(a.lr)) throw InvalidArgument("--lr must be a positive number");
  if (!a.resume.empty() && !file_exists(a.resume)) throw Error("--resume: no such file: " + a.resume);

  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const int32_t max_tokens = std::min(a.ctx, engine->config().n_ctx_train);
  auto train_set = examples(train_convs, a.data, *engine, max_tokens);
  int64_t n_kl = 0;
  if (!kl_convs.empty()) {  // trained like --data, plus the KL term toward the base model
    auto kl_set = examples(kl_convs, a.kl_data, *engine, max_tokens);
    for (auto& ex : kl_set) {
      ex.kl_weight = a.kl_weight, ex.ce_weight = a.kl_data_ce, n_kl += ex.n_targets();
      ex.kl_margin_boost = a.kl_margin_boost, ex.kl_margin_tau = a.kl_margin_tau;
      ex.hinge_weight = a.hinge_weight, ex.hinge_margin_cap = a.hinge_margin_cap;
    }
    train_set.insert(train_set.end(), kl_set.begin(), kl_set.end());
  }
  const auto eval_set = a.eval.empty() ? std::vector<train::Example>{} : examples(eval_convs, a.eval, *engine, max_tokens);
  int64_t n_tok = 0, n_tgt = 0;
  for (const auto& ex : train_set) {
    n_tok += static_cast<int64_t>(ex.tokens.size());
    n_tgt += ex.n_targets();
  }
  if (a.dry_run) {
    std::printf("%zu conversations, %" PRId64 " tokens, %" PRId64 " trained; the first one (learned tokens in \u00ab\u00bb):\n%s\n",
                train_set.size(), n_tok, n_tgt, marked(train_set[0], engine->tokenizer()).c_str());
    return;
  }
  cfg.layers = train::parse_lora_layers(a.layers, engine->config().n_layer);  // needs the model's layer count
  train::LoraParams params(engine->config(), cfg);
  std::fprintf(stderr,
               "finetune: %zu conversations (%" PRId64 " tokens, %" PRId64 " trained), %zu eval; rank %d, alpha %g, "
               "%" PRIu64 " parameters; %d threads\n",
               train_set.size(), n_tok, n_tgt, eval_set.size(), a.rank, a.alpha, params.n_params(),
               engine->pool().size());
  if (n_kl > 0)
    std::fprintf(stderr, "KL term toward the base model (weight %g) on %" PRId64 " target tokens of %s, their "
                 "cross-entropy weighted %g\n", a.kl_weight, n_kl, a.kl_data.c_str(), a.kl_data_ce);
  if (a.kl_margin_boost > 0)
    std::fprintf(stderr, "KL per token weighted by 1 + %g·exp(-margin / %g), margin the base's top-2 gap in nats\n",
                 a.kl_margin_boost, a.kl_margin_tau);
  if (a.hinge_weight > 0)
    std::fprintf(stderr, "hinge %g·max(0, min(base margin, %g) - margin of the base's choice) on the KL data's targets\n",
                 a.hinge_weight, a.hinge_margin_cap);
  train::Trainer trainer(engine->model(), params, engine->pool(), !a.no_transpose);
  if (trainer.transposed_bytes())
    std::fprintf(stderr, "backward through Q8_0 transposes of the base matrices (%.1f MiB)\n",
                 trainer.transposed_bytes() / 1048576.0);
  train::FinetuneOptions opt;
  opt.epochs = a.epochs;
  opt.batch = a.batch;
  opt.opt.lr = a.lr;
  opt.opt.weight_decay = a.weight_decay;
  opt.opt.clip_norm = a.clip;
  opt.seed = a.seed;
  opt.checkpoint = a.checkpoint.empty() ? a.out + ".ckpt" : a.checkpoint;
  opt.checkpoint_every = a.save_every;
  opt.resume = a.resume;
  if (!eval_set.empty() && a.resume.empty())
    std::fprintf(stderr, "eval loss before training: %.4f\n", train::evaluate_set(trainer, eval_set).mean());

  const bool tty = isatty(fileno(stderr)) != 0;
  bool first = true;  // of this run (a resumed one starts mid-way)
  auto progress = [&](const train::Progress& p) {
    const bool show = tty || first || p.step % 10 == 0 || p.step == p.steps;
    first = false;
    if (a.save_adapter_every > 0 && p.step % a.save_adapter_every == 0 && p.step < p.steps) {
      params.save_adapter(step_path(a.out, p.step), std::filesystem::path(a.out).stem().string(), *out_type);
      std::fprintf(stderr, "%sstep %" PRId64 " adapter: %s\n", tty ? "\r\033[K" : "", p.step,
                   step_path(a.out, p.step).c_str());
    }
    if (!show) return;
    std::fprintf(stderr, "%sepoch %d/%d  step %" PRId64 "/%" PRId64 "  loss %.4f  %.0f tok/s  left %s%s",
                 tty ? "\r\033[K" : "", p.epoch, p.epochs, p.step, p.steps, p.loss, p.tokens_per_s,
                 duration(p.seconds_left).c_str(), tty ? "" : "\n");
  };
  auto epoch_done = [&](const train::EpochReport& r) {
    std::fprintf(stderr, "%sepoch %d: train loss %.4f", tty ? "\r\033[K" : "", r.epoch, r.train_loss);
    if (r.eval_loss >= 0) std::fprintf(stderr, "  eval loss %.4f", r.eval_loss);
    if (r.kl >= 0) std::fprintf(stderr, "  KL to base %.4f", r.kl);
    if (r.hinge >= 0) std::fprintf(stderr, "  hinge %.4f (active at %.1f%%)", r.hinge, 100.0 * r.hinge_active);
    std::fprintf(stderr, "  (%.1f s, %.0f tok/s)\n", r.seconds, r.tokens_per_s);
    if (a.save_epochs) {
      params.save_adapter(epoch_path(a.out, r.epoch), std::filesystem::path(a.out).stem().string(), *out_type);
      std::fprintf(stderr, "epoch %d adapter: %s\n", r.epoch, epoch_path(a.out, r.epoch).c_str());
    }
  };
  g_stop.store(false);
  auto old = std::signal(SIGINT, on_sigint);
  train::FinetuneResult res;
  try {
    res = train::finetune(trainer, params, train_set, eval_set, opt, progress, epoch_done, &g_stop);
  } catch (...) {
    std::signal(SIGINT, old);
    throw;
  }
  std::signal(SIGINT, old);
  if (tty) std::fprintf(stderr, "\n");
  if (res.end == train::FinetuneResult::End::NonFinite)
    throw Error(res.message + (res.checkpoint_written ? " (" + opt.checkpoint + ")" : " (no checkpoint had been written yet)") +
                "; no adapter written");
  params.save_adapter(a.out, std::filesystem::path(a.out).stem().string(), *out_type);
  const auto bytes = std::filesystem::file_size(a.out);
  if (res.end == train::FinetuneResult::End::Stopped)
    std::fprintf(stderr, "interrupted: adapter saved to %s, checkpoint to %s (continue with --resume %s)\n",
                 a.out.c_str(), opt.checkpoint.c_str(), opt.checkpoint.c_str());
  else
    std::fprintf(stderr, "adapter saved to %s (%.2f MiB); checkpoint %s\n", a.out.c_str(), bytes / 1048576.0,
                 opt.checkpoint.c_str());
  std::fprintf(stderr, "peak RSS %.0f MiB\n", peak_rss_mib());
}

Registrar reg("finetune", "Train a LoRA adapter on chat conversations (OpenAI fine-tuning JSONL)", [](CLI::App& app) {
  auto a = std::make_shared<FinetuneArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("--data", a->data, "Training data: one {\"messages\": [...]} per line")->required();
  app.add_option("--eval", a->eval, "Evaluation data (same format): loss after every epoch");
  app.add_option("--out", a->out, "The adapter to write (GGUF, loads with --lora and in llama.cpp); required unless --dry-run");
  app.add_option("--out-type", a->out_type, "Adapter tensor type: f32, f16 or q8_0 (lora_b rows shorter than a Q8_0 "
                                            "block stay f16)")->capture_default_str();
  app.add_option("--rank", a->rank, "LoRA rank")->capture_default_str();
  app.add_option("--alpha", a->alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  app.add_option("--targets", a->targets, "Adapted projections: all, or a list of q,k,v,o,gate,up,down")
      ->capture_default_str();
  app.add_option("--layers", a->layers, "Adapted layers: all, or numbers and ranges (\"12-23\", \"0,4,8-11\")")
      ->capture_default_str();
  app.add_option("--epochs", a->epochs, "Passes over the data")->capture_default_str();
  app.add_option("--lr", a->lr, "AdamW learning rate")->capture_default_str();
  app.add_option("--weight-decay", a->weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--clip", a->clip, "Gradient norm clip (0: off)")->capture_default_str();
  app.add_option("--batch", a->batch, "Conversations per optimizer step (gradient accumulation)")
      ->capture_default_str();
  app.add_option("--ctx", a->ctx, "Longest conversation in tokens; longer ones are skipped with a warning")
      ->capture_default_str();
  app.add_option("--checkpoint", a->checkpoint, "Checkpoint file (default: OUT.ckpt), written after every epoch and on Ctrl-C");
  app.add_option("--save-every", a->save_every, "Also write the checkpoint every N steps (0: epochs only)");
  app.add_option("--save-adapter-every", a->save_adapter_every,
                 "Also write the adapter every N steps (OUT with .stepN.gguf), for points between epochs (0: off)");
  app.add_option("--kl-data", a->kl_data,
                 "More training data (same format) whose assistant tokens also get --kl-weight times KL(base || "
                 "adapted) of the next-token distributions: keeps general behaviour (replay) close to the base model's");
  app.add_option("--kl-weight", a->kl_weight, "Weight of the KL term on --kl-data's target tokens")->capture_default_str();
  app.add_option("--kl-data-ce", a->kl_data_ce,
                 "Weight of the cross-entropy on --kl-data's target tokens (0: KL only, pure distillation toward the "
                 "base: the replay's own text, e.g. a greedy or cut-off answer, is not learned)")
      ->capture_default_str();
  app.add_option("--kl-margin-boost", a->kl_margin_boost,
                 "Weight each --kl-data token's KL by 1 + BOOST·exp(-margin / --kl-margin-tau), margin the base's top "
                 "log-probability minus the runner-up's there: holds the adapter hardest where the base's choice is a "
                 "near-tie (0: every token alike)")->capture_default_str();
  app.add_option("--kl-margin-tau", a->kl_margin_tau, "Scale of --kl-margin-boost's margin, in nats")
      ->capture_default_str();
  app.add_option("--hinge-weight", a->hinge_weight,
                 "Add W·max(0, γ - (l_c - max_{j≠c} l_j)) at each --kl-data target: c the base model's own choice "
                 "there, l the adapted logits, γ = min(the base's margin, --hinge-margin-cap). Zero until the adapter "
                 "pushes a base decision toward flipping, then linear in it (0: off)")->capture_default_str();
  app.add_option("--hinge-margin-cap", a->hinge_margin_cap,
                 "Largest margin (nats) --hinge-weight defends: a base choice decided by more is held only down to this")
      ->capture_default_str();
  app.add_option("--resume", a->resume, "Continue from a checkpoint (same model, data, rank, alpha and targets)");
  app.add_option("--seed", a->seed, "Seed of the initial factors and the example order")->capture_default_str();
  app.add_flag("--dry-run", a->dry_run, "Check and render the data, show the first conversation's learned tokens, stop");
  app.add_flag("--save-epochs", a->save_epochs, "Also write each epoch's adapter (OUT with .epochN.gguf)");
  app.add_flag("--no-transpose", a->no_transpose,
               "Backward pass dequantizing the base matrices tile by tile (slower) instead of through Q8_0 "
               "transposes of them (about 1.06 bytes per weight more memory)");
  add_exact_flag(app);
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.callback([a] { finetune(*a); });
});

}  // namespace
}  // namespace edgellm::cli
