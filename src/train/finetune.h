#pragma once
// The training loop: epochs over shuffled examples, gradient accumulation over `batch`
// examples per AdamW step, an eval loss per epoch, checkpoints, a cooperative stop (Ctrl-C) and
// a stop on a non-finite loss that keeps the last good checkpoint.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/lora_params.h"
#include "train/trainer.h"

namespace edgellm::train {

struct FinetuneOptions {
  int32_t epochs = 1;
  int32_t batch = 1;  // examples per optimizer step (gradient accumulation)
  AdamW opt;
  uint64_t seed = 1;             // example order: a permutation per epoch from (seed, epoch)
  std::string checkpoint;        // written after every epoch and on a stop ("" = never)
  int32_t checkpoint_every = 0;  // also every this many steps (0: only at epoch ends)
  std::string resume;            // a checkpoint to continue from ("" = start fresh)
};

struct Progress {
  int32_t epoch = 0, epochs = 0;  // 1-based epoch
  int64_t step = 0, steps = 0;    // optimizer steps done / in the whole run
  double loss = 0;                // mean loss per target token of the last step
  double tokens_per_s = 0;        // tokens (forward + backward) per second since start
  double seconds_left = 0;
};

struct EpochReport {
  int32_t epoch = 0;
  double train_loss = 0;  // mean over the epoch's target tokens
  double eval_loss = -1;  // mean over the eval set's target tokens (-1: no eval set)
  double kl = -1;         // mean KL(p_base || p) over the targets of examples with a KL term (-1: none)
  double hinge = -1;      // mean unweighted hinge over the targets of examples with one (-1: none)
  double hinge_active = -1;  // the fraction of those targets where it was > 0
  double seconds = 0;
  double tokens_per_s = 0;
};

struct FinetuneResult {
  enum class End { Done, Stopped, NonFinite } end = End::Done;
  std::string message;  // why it ended early
  std::vector<EpochReport> epochs;
  int64_t steps = 0;
  bool checkpoint_written = false;  // at least one checkpoint exists from this run or the resumed one
};

// Mean loss over a set of examples (forward only).
LossSum evaluate_set(Trainer& trainer, const std::vector<Example>& set);

FinetuneResult finetune(Trainer& trainer, LoraParams& params, const std::vector<Example>& train,
                        const std::vector<Example>& eval, const FinetuneOptions& opt,
                        const std::function<void(const Progress&)>& on_progress,
                        const std::function<void(const EpochReport&)>& on_epoch, const std::atomic<bool>* stop);

}  // namespace edgellm::train
