#pragma once
// Forward and backward passes of a frozen base model with trainable LoRA factors, over one
// sequence at a time (positions 0..T-1, causal attention, no KV cache). The same blocks as
// model::Model::forward (llama, qwen2, gemma3: QKV bias, QK-norm, post-norms, GeGLU, embedding
// scale, sliding window, soft-capping). Memory: only each layer's input is kept from the forward
// pass; a layer's other activations are recomputed just before its backward (activation
// recomputation), so a step holds (n_layer + 1)·T·n_embd floats plus one layer's activations.
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "ops/thread_pool.h"
#include "train/lora_params.h"
#include "train/transposed.h"

namespace edgellm::train {

// One training sequence: token ids and which of them are targets (loss is taken at position
// t-1 predicting tokens[t] where target[t] is set: the assistant's tokens).
struct Example {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> target;  // [tokens.size()]
  // > 0: at every target position also kl_weight·KL(p_base || p), p_base the next-token
  // distribution of the same model with the adapter off. Pulls the adapter toward the base's whole
  // distribution on examples meant to keep general behaviour (replay), not only toward the one
  // token the example holds. Costs one extra forward pass without the adapter per step.
  float kl_weight = 0.0f;
  // Weight of the cross-entropy on the targets' tokens (1: plain training). 0 with kl_weight > 0:
  // pure distillation toward the base (the tokens only say where the KL is taken), so a replay
  // answer's own text, e.g. the base's greedy or truncated reply, is not itself learned.
  float ce_weight = 1.0f;
  // With kl_weight: the KL at a target position is further weighted by 1 + kl_margin_boost·exp(-m /
  // kl_margin_tau), m the base's margin there (its top log-probability minus the runner-up's, in nats).
  // The adapter is held hardest where the base's own choice is a near-tie, which is where an
  // adapted model's greedy answer flips first (check_margins.py). 0: every position alike.
  float kl_margin_boost = 0.0f;
  float kl_margin_tau = 0.1f;
  // > 0: at every target position also hinge_weight·max(0, γ - (l_c - max_{j≠c} l_j)), c the base's own
  // choice there (its argmax, adapter off), l the adapted logits (soft-capped where the model soft-caps)
  // and γ = min(the base's margin there, hinge_margin_cap). Zero at the base and linear in how far the
  // adapter pushes a base decision toward flipping, so a near-tie costs as much to flip as a sure one
  // per nat moved (a KL, quadratic around the base, prices a 0.05-nat tie at ~1e-4).
  float hinge_weight = 0.0f;
  float hinge_margin_cap = 0.5f;
  int64_t n_targets() const;
};

struct LossSum {
  double loss = 0.0;  // sum over the targets of ce_weight·-log p(target) (+ kl_weight·KL when the example has one)
  double kl = 0.0;    // sum over the targets of KL(p_base || p) alone (unweighted; 0 without kl_weight)
  int64_t n = 0;      // number of targets
  int64_t n_kl = 0;   // number of them with the KL term
  double hinge = 0.0;    // sum of the unweighted hinges max(0, γ - margin) (0 without hinge_weight)
  int64_t n_hinge = 0;   // targets with the hinge term
  int64_t n_hinge_active = 0;  // of them, where it is > 0
  void add(const LossSum& o) {
    loss += o.loss, kl += o.kl, n += o.n, n_kl += o.n_kl;
    hinge += o.hinge, n_hinge += o.n_hinge, n_hinge_active += o.n_hinge_active;
  }
  double mean() const { return n > 0 ? loss / static_cast<double>(n) : 0.0; }
};

class Trainer {
 public:
  // transposed: keep Q8_0 transposes of the base matrices for the backward pass (TransposedWeights:
  // several times faster, about 1.06 bytes per base weight more memory). Never in exact mode
  // (ops::exact_activations() when constructed), whose gradients stay fp32 throughout.
  Trainer(const model::Model& m, LoraParams& params, ops::ThreadPool& pool, bool transposed = true);
  // Bytes of the transposed copies (0 without them).
  uint64_t transposed_bytes() const { return wt_ ? wt_->bytes() : 0; }

  // Loss of `ex` and its gradient, added to the parameters' gradient sums (call
  // LoraParams::zero_grad between optimizer steps). InvalidArgument for bad token ids or an
  // example longer than the model's training context.
  LossSum forward_backward(const Example& ex);
  // Loss only.
  LossSum evaluate(const Example& ex);

 private:
  struct LayerActs;
  void check(const Example& ex) const;
  void embed(const Example& ex, float* x);
  // x_in [T][d] -> x_out [T][d]; fills `a` with what backward needs.
  void layer_forward(int32_t il, const float* x_in, float* x_out, LayerActs& a);
  // dx: dL/d(layer output) in, dL/d(layer input) out.
  void layer_backward(int32_t il, const float* x_in, LayerActs& a, float* dx);
  // Loss over the targets from the last hidden states x [T][d]; with dx non-null also
  // dL/dx (overwritten). x_base: the adapter-off model's last hidden states, for the KL term of an
  // example with kl_weight or hinge_weight (nullptr otherwise).
  LossSum head(const Example& ex, const float* x, float* dx, const float* x_base = nullptr);
  // Last hidden states [T][d] of ex through all layers, keeping no activations: for the loss only
  // (evaluate) or, with adapter_off, the base model's states that the KL term compares against.
  std::vector<float> forward_layers(const Example& ex, bool adapter_off);
  // dx += W^T·dy over T rows: through W's transpose when there is one.
  void linear_t_add(const ops::MatrixView& W, const float* dy, int64_t T, float* dx);

  const model::Model& model_;
  LoraParams& params_;
  ops::ThreadPool& pool_;
  int64_t T_ = 0;
  std::vector<float> rope_cs_;  // [T][n_rot] per rope base in use: cos, sin pairs
  float rope_base_ = 0.0f;
  bool adapter_off_ = false;  // layer_forward without the LoRA products (forward_layers)
  std::vector<float> scratch_;
  std::unique_ptr<TransposedWeights> wt_;
  std::vector<float> t_scratch_;  // matmul_t_add_transposed's product
};

}  // namespace edgellm::train
