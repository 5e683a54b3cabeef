#include "train/finetune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "util/error.h"

namespace edgellm::train {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<size_t> order(size_t n, uint64_t seed, int32_t epoch) {
  std::vector<size_t> o(n);
  std::iota(o.begin(), o.end(), size_t{0});
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  std::shuffle(o.begin(), o.end(), rng);
  return o;
}

}  // namespace

LossSum evaluate_set(Trainer& trainer, const std::vector<Example>& set) {
  LossSum total;
  for (const Example& ex : set) {
    const LossSum l = trainer.evaluate(ex);
    total.loss += l.loss;
    total.n += l.n;
  }
  return total;
}

FinetuneResult finetune(Trainer& trainer, LoraParams& params, const std::vector<Example>& train,
                        const std::vector<Example>& eval, const FinetuneOptions& opt,
                        const std::function<void(const Progress&)>& on_progress,
                        const std::function<void(const EpochReport&)>& on_epoch, const std::atomic<bool>* stop) {
  if (train.empty()) throw InvalidArgument("no training examples");
  if (opt.epochs <= 0) throw InvalidArgument("--epochs must be at least 1");
  if (opt.batch <= 0) throw InvalidArgument("--batch must be at least 1");
  FinetuneResult res;
  int32_t first_epoch = 0;
  size_t first_pos = 0;
  if (!opt.resume.empty()) {
    for (const auto& [k, v] : params.load_checkpoint(opt.resume)) {
      if (k == "epoch") first_epoch = static_cast<int32_t>(v);
      if (k == "position") first_pos = static_cast<size_t>(v);
    }
    if (first_pos > train.size()) throw InvalidArgument(opt.resume + ": its position is beyond this data set");
    res.checkpoint_written = true;
  }
  const int64_t steps_per_epoch = static_cast<int64_t>((train.size() + opt.batch - 1) / opt.batch);
  const int64_t steps_total = steps_per_epoch * opt.epochs;
  int64_t tokens_per_epoch = 0;
  for (const Example& ex : train) tokens_per_epoch += static_cast<int64_t>(ex.tokens.size());
  const int64_t tokens_total = tokens_per_epoch * opt.epochs;
  int64_t tokens_done = 0, tokens_before = 0;  // this run / already done when resumed
  const auto t0 = Clock::now();
  auto save = [&](int32_t epoch, size_t pos) {
    if (opt.checkpoint.empty()) return;
    params.save_checkpoint(opt.checkpoint, {{"epoch", epoch}, {"position", static_cast<int64_t>(pos)}});
    res.checkpoint_written = true;
  };

  for (int32_t epoch = first_epoch; epoch < opt.epochs; ++epoch) {
    const auto o = order(train.size(), opt.seed, epoch);
    const auto e0 = Clock::now();
    LossSum epoch_loss;
    int64_t epoch_tokens = 0;
    size_t pos = epoch == first_epoch ? first_pos : 0;
    if (epoch == first_epoch) {  // what the resumed run had done already (for the time left)
      tokens_before = static_cast<int64_t>(epoch) * tokens_per_epoch;
      for (size_t i = 0; i < pos; ++i) tokens_before += static_cast<int64_t>(train[o[i]].tokens.size());
    }
    while (pos < train.size()) {
      if (stop && stop->load()) {
        save(epoch, pos);
        res.end = FinetuneResult::End::Stopped;
        res.message = "stopped";
        return res;
      }
      params.zero_grad();
      LossSum step_loss;
      const size_t end = std::min(train.size(), pos + static_cast<size_t>(opt.batch));
      for (size_t i = pos; i < end; ++i) {
        const Example& ex = train[o[i]];
        step_loss.add(trainer.forward_backward(ex));
        tokens_done += static_cast<int64_t>(ex.tokens.size());
        epoch_tokens += static_cast<int64_t>(ex.tokens.size());
      }
      // A non-finite loss or gradient leaves the parameters as they were, so no checkpoint ever holds them.
      if (!std::isfinite(step_loss.loss) || !std::isfinite(params.adamw_step(opt.opt, static_cast<double>(step_loss.n)))) {
        res.end = FinetuneResult::End::NonFinite;
        res.message = "the loss or its gradient is not a finite number at step " + std::to_string(params.step() + 1) +
                      " (learning rate too high?); training stopped, the last checkpoint is kept";
        return res;
      }
      epoch_loss.add(step_loss);
      pos = end;
      ++res.steps;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      Progress p;
      p.epoch = epoch + 1;
      p.epochs = opt.epochs;
      p.step = static_cast<int64_t>(epoch) * steps_per_epoch + static_cast<int64_t>((pos + opt.batch - 1) / opt.batch);
      p.steps = steps_total;
      p.loss = step_loss.mean();
      p.tokens_per_s = secs > 0 ? static_cast<double>(tokens_done) / secs : 0;
      const double left = static_cast<double>(tokens_total - tokens_before - tokens_done);
      p.seconds_left = p.tokens_per_s > 0 ? std::max(0.0, left) / p.tokens_per_s : 0;
      if (on_progress) on_progress(p);
      if (opt.checkpoint_every > 0 && res.steps % opt.checkpoint_every == 0 && pos < train.size()) save(epoch, pos);
    }
    EpochReport rep;
    rep.epoch = epoch + 1;
    rep.train_loss = epoch_loss.mean();
    if (epoch_loss.n_kl > 0) rep.kl = epoch_loss.kl / static_cast<double>(epoch_loss.n_kl);
    if (epoch_loss.n_hinge > 0) {
      rep.hinge = epoch_loss.hinge / static_cast<double>(epoch_loss.n_hinge);
      rep.hinge_active = static_cast<double>(epoch_loss.n_hinge_active) / static_cast<double>(epoch_loss.n_hinge);
    }
    rep.seconds = std::chrono::duration<double>(Clock::now() - e0).count();
    rep.tokens_per_s = rep.seconds > 0 ? static_cast<double>(epoch_tokens) / rep.seconds : 0;
    if (!eval.empty()) rep.eval_loss = evaluate_set(trainer, eval).mean();
    res.epochs.push_back(rep);
    save(epoch + 1, 0);
    if (on_epoch) on_epoch(rep);
  }
  return res;
}

}  // namespace edgellm::train
