// edgellm lora-grad: loss and LoRA gradients of one token sequence, for the gradient checks
// (tests/python/test_finetune_grad.py compares them with NumPy finite differences).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "model/lora.h"
#include "train/lora_params.h"
#include "train/trainer.h"
#include "util/error.h"

namespace edgellm::cli {
namespace {

struct GradArgs {
  std::string model, adapter, ids, targets, out;
  int32_t threads = 0;
  float kl_weight = 0.0f, ce_weight = 1.0f, kl_margin_boost = 0.0f, kl_margin_tau = 0.1f, hinge_weight = 0.0f,
        hinge_margin_cap = 0.5f;
  bool no_transpose = false;
};

std::vector<int32_t> int_list(const std::string& s, const char* flag) {
  std::vector<int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw InvalidArgument(std::string(flag) + " must be comma-separated integers, got '" + item + "'");
    }
  }
  return out;
}

void lora_grad(const GradArgs& a) {
  train::Example ex;
  ex.tokens = int_list(a.ids, "--ids");
  for (int32_t v : int_list(a.targets, "--targets")) ex.target.push_back(v != 0);
  if (!std::isfinite(a.kl_weight) || a.kl_weight < 0) throw InvalidArgument("--kl-weight must be a number >= 0");
  ex.kl_weight = a.kl_weight;
  ex.ce_weight = a.ce_weight;
  ex.kl_margin_boost = a.kl_margin_boost;  // the trainer checks both
  ex.kl_margin_tau = a.kl_margin_tau;
  ex.hinge_weight = a.hinge_weight;  // the trainer checks both
  ex.hinge_margin_cap = a.hinge_margin_cap;
  auto engine = runtime::Engine::load(resolve_model(a.model), {a.threads});
  const auto adapter = model::LoraAdapter::load(a.adapter, engine->model());
  auto params = train::LoraParams::from_adapter(engine->config(), *adapter);
  train::Trainer trainer(engine->model(), params, engine->pool(), !a.no_transpose);
  params.zero_grad();
  const train::LossSum loss = trainer.forward_backward(ex);
  // The gradients written as an adapter: lora_a = dL/dA, lora_b = dL/dB, alpha as the input's.
  for (int32_t il = 0; il < engine->config().n_layer; ++il)
    for (int i = 0; i < model::kLoraTargets; ++i)
      if (auto* f = params.factor(il, static_cast<model::LoraTarget>(i))) {
        f->a = f->ga;
        f->bt = f->gbt;
      }
  params.save_adapter(a.out, "gradients");
  std::printf("loss %.9g targets %lld transposed_bytes %llu kl %.9g hinge %.9g hinge_active %lld\n", loss.loss,
              static_cast<long long>(loss.n), static_cast<unsigned long long>(trainer.transposed_bytes()), loss.kl,
              loss.hinge, static_cast<long long>(loss.n_hinge_active));
}

Registrar reg("lora-grad", "Loss and LoRA gradients of one token sequence (gradient checks)", [](CLI::App& app) {
  auto a = std::make_shared<GradArgs>();
  app.add_option("-m,--model", a->model, model_help());
  app.add_option("--lora", a->adapter, "The adapter whose factors are differentiated")->required();
  app.add_option("--ids", a->ids, "Comma-separated token ids")->required();
  app.add_option("--targets", a->targets, "Comma-separated 0/1 per token: 1 = predicted (loss at the previous position)")
      ->required();
  app.add_option("--out", a->out, "Output: the summed loss's gradients in the adapter layout (GGUF)")->required();
  app.add_option("--kl-weight", a->kl_weight,
                 "Add this weight times KL(base || adapted) at every target (finetune --kl-data)")->capture_default_str();
  app.add_option("--ce-weight", a->ce_weight, "Weight of the cross-entropy on the targets (finetune --kl-data-ce)")
      ->capture_default_str();
  app.add_option("--kl-margin-boost", a->kl_margin_boost, "finetune --kl-margin-boost")->capture_default_str();
  app.add_option("--kl-margin-tau", a->kl_margin_tau, "finetune --kl-margin-tau")->capture_default_str();
  app.add_option("--hinge-weight", a->hinge_weight, "finetune --hinge-weight")->capture_default_str();
  app.add_option("--hinge-margin-cap", a->hinge_margin_cap, "finetune --hinge-margin-cap")->capture_default_str();
  add_exact_flag(app);
  app.add_flag("--no-transpose", a->no_transpose, "Backward pass without the Q8_0 transposes (as finetune --no-transpose)");
  app.add_option("-t,--threads", a->threads, "Threads (0 = physical cores)");
  app.callback([a] { lora_grad(*a); });
});

}  // namespace
}  // namespace edgellm::cli
