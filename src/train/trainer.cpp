#include "train/trainer.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "ops/ops.h"
#include "train/grad_ops.h"
#include "util/error.h"

namespace edgellm::train {

using model::LoraTarget;

namespace {
constexpr int64_t kHeadRows = 64;  // target positions whose logits are held at once ([64][n_vocab])

void zero(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }
void size(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace

int64_t Example::n_targets() const {
  int64_t n = 0;
  for (size_t t = 1; t < target.size(); ++t) n += target[t] != 0;
  return n;
}

struct Trainer::LayerActs {
  std::vector<float> xn1, q0, k0, q, k, v, probs, attn, o, x_mid, xn2, gate, up, h, f;
  std::array<std::vector<float>, model::kLoraTargets> u;  // A·x of each adapted projection [T][rank]
  // Backward scratch.
  std::vector<float> d1, d2, d3, dq, dk, dv, dq0, dk0, dgate, dup, dh;
};

Trainer::Trainer(const model::Model& m, LoraParams& params, ops::ThreadPool& pool, bool transposed)
    : model_(m), params_(params), pool_(pool) {
  const auto& c = m.config();
  const auto& p = params.config();
  if (p.arch != c.arch || p.n_layer != c.n_layer || p.n_embd != c.n_embd || p.q_dim() != c.q_dim() ||
      p.kv_dim() != c.kv_dim() || p.n_ff != c.n_ff)
    throw InvalidArgument("the LoRA parameters were made for another model");
  if (transposed && !ops::exact_activations()) wt_ = std::make_unique<TransposedWeights>(m, pool);
}

void Trainer::linear_t_add(const ops::MatrixView& W, const float* dy, int64_t T, float* dx) {
  if (const ops::MatrixView* WT = wt_ ? wt_->find(W) : nullptr)
    matmul_t_add_transposed(*WT, dy, T, dx, pool_, t_scratch_);
  else
    matmul_t_add(W, dy, T, dx, pool_);
}

void Trainer::check(const Example& ex) const {
  const auto& c = model_.config();
  if (ex.tokens.size() < 2) throw InvalidArgument("a training example needs at least two tokens");
  if (ex.target.size() != ex.tokens.size()) throw InvalidArgument("example targets and tokens differ in length");
  if (!std::isfinite(ex.kl_weight) || ex.kl_weight < 0 || !std::isfinite(ex.ce_weight) || ex.ce_weight < 0)
    throw InvalidArgument("example loss weights must be numbers >= 0");
  if (!std::isfinite(ex.kl_margin_boost) || ex.kl_margin_boost < 0 || !std::isfinite(ex.kl_margin_tau) ||
      ex.kl_margin_tau <= 0)
    throw InvalidArgument("the KL margin boost must be a number >= 0 and its scale a number > 0");
  if (!std::isfinite(ex.hinge_weight) || ex.hinge_weight < 0 || !std::isfinite(ex.hinge_margin_cap) ||
      !(ex.hinge_margin_cap > 0))
    throw InvalidArgument("the hinge weight must be a number >= 0 and its margin cap a number > 0");
  if (static_cast<int64_t>(ex.tokens.size()) > c.n_ctx_train)
    throw InvalidArgument("example of " + std::to_string(ex.tokens.size()) + " tokens exceeds the model's context " +
                          std::to_string(c.n_ctx_train));
  for (int32_t t : ex.tokens)
    if (t < 0 || t >= c.n_vocab) throw InvalidArgument("token id " + std::to_string(t) + " outside the vocabulary");
}

void Trainer::embed(const Example& ex, float* x) {
  const auto& c = model_.config();
  const auto& E = model_.weights().token_embd;
  std::vector<uint8_t> raw;
  for (int64_t t = 0; t < T_; ++t) {
    ops::dequantize_row(E.type, ops::matrix_row(E, ex.tokens[t], raw), x + t * c.n_embd, c.n_embd);
    if (c.embd_scale != 1.0f) ops::scale_f32(x + t * c.n_embd, c.embd_scale, c.n_embd);
  }
}

void Trainer::layer_forward(int32_t il, const float* x_in, float* x_out, LayerActs& a) {
  const auto& c = model_.config();
  const model::LayerWeights& L = model_.weights().layers[il];
  const int64_t T = T_, d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim, ff = c.n_ff;
  const float s = params_.scale();
  size(a.xn1, T * d);
  for (int64_t t = 0; t < T; ++t) ops::rmsnorm(x_in + t * d, L.attn_norm.data(), &a.xn1[t * d], d, c.norm_eps);
  // y = W·x (+ LoRA) (+ bias): the same order of additions as Model::forward.
  auto linear = [&](const ops::MatrixView& W, LoraTarget tg, const float* x, std::vector<float>& y, int64_t n_out,
                    const std::vector<float>* bias) {
    size(y, T * n_out);
    ops::matmul(W, x, T, y.data(), pool_);
    if (const LoraFactor* f = adapter_off_ ? nullptr : params_.factor(il, tg)) {
      auto& u = a.u[static_cast<int>(tg)];
      size(u, T * f->rank);
      lora_forward(*f, s, x, T, u.data(), y.data(), pool_);
    }
    if (bias)
      for (int64_t t = 0; t < T; ++t) ops::add_f32(&y[t * n_out], bias->data(), &y[t * n_out], n_out);
  };
  linear(L.wq, LoraTarget::Q, a.xn1.data(), a.q0, qd, c.qkv_bias ? &L.bq : nullptr);
  linear(L.wk, LoraTarget::K, a.xn1.data(), a.k0, kvd, c.qkv_bias ? &L.bk : nullptr);
  linear(L.wv, LoraTarget::V, a.xn1.data(), a.v, kvd, c.qkv_bias ? &L.bv : nullptr);
  const float base = c.rope_base_for(il);
  if (rope_base_ != base) {
    size(rope_cs_, T * c.n_rot);
    for (int64_t t = 0; t < T; ++t) ops::rope_cos_sin(c.n_rot, t, base, c.rope_freq_scale, &rope_cs_[t * c.n_rot]);
    rope_base_ = base;
  }
  a.q.assign(a.q0.begin(), a.q0.begin() + T * qd);
  a.k.assign(a.k0.begin(), a.k0.begin() + T * kvd);
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = &rope_cs_[t * c.n_rot];
    for (int64_t h = 0; h < c.n_head; ++h) {
      float* q = &a.q[t * qd + h * hd];
      if (c.qk_norm) ops::rmsnorm(q, L.q_norm.data(), q, hd, c.norm_eps);
      ops::rope_apply(q, hd, c.n_rot, cs, c.rope_neox);
    }
    for (int64_t h = 0; h < c.n_head_kv; ++h) {
      float* k = &a.k[t * kvd + h * hd];
      if (c.qk_norm) ops::rmsnorm(k, L.k_norm.data(), k, hd, c.norm_eps);
      ops::rope_apply(k, hd, c.n_rot, cs, c.rope_neox);
    }
  }
  const AttentionShape as{T, c.n_head, c.n_head_kv, hd, c.attn_scale, c.attn_softcap,
                          c.layer_swa[il] ? c.sliding_window : 0};
  size(a.attn, T * qd);
  size(a.probs, static_cast<size_t>(c.n_head) * T * T);
  attention_forward(as, a.q.data(), a.k.data(), a.v.data(), a.attn.data(), a.probs.data(), pool_);
  linear(L.wo, LoraTarget::O, a.attn.data(), a.o, d, nullptr);
  size(a.x_mid, T * d);
  size(a.xn2, T * d);
  std::vector<float>& tmp = scratch_;
  size(tmp, d);
  for (int64_t t = 0; t < T; ++t) {
    const float* o = &a.o[t * d];
    if (c.post_attn_norm) {
      ops::rmsnorm(o, L.post_attn_norm.data(), tmp.data(), d, c.norm_eps);
      o = tmp.data();
    }
    ops::add_f32(x_in + t * d, o, &a.x_mid[t * d], d);
    ops::rmsnorm(&a.x_mid[t * d], L.ffn_norm.data(), &a.xn2[t * d], d, c.norm_eps);
  }
  linear(L.w_gate, LoraTarget::Gate, a.xn2.data(), a.gate, ff, nullptr);
  linear(L.w_up, LoraTarget::Up, a.xn2.data(), a.up, ff, nullptr);
  size(a.h, T * ff);
  for (int64_t t = 0; t < T; ++t) {
    if (c.mlp == model::MlpKind::SwiGLU) ops::silu_mul(&a.gate[t * ff], &a.up[t * ff], &a.h[t * ff], ff);
    else ops::gelu_mul(&a.gate[t * ff], &a.up[t * ff], &a.h[t * ff], ff);
  }
  linear(L.w_down, LoraTarget::Down, a.h.data(), a.f, d, nullptr);
  for (int64_t t = 0; t < T; ++t) {
    const float* f = &a.f[t * d];
    if (c.post_ffn_norm) {
      ops::rmsnorm(f, L.post_ffn_norm.data(), tmp.data(), d, c.norm_eps);
      f = tmp.data();
    }
    ops::add_f32(&a.x_mid[t * d], f, x_out + t * d, d);
  }
}

void Trainer::layer_backward(int32_t il, const float* x_in, LayerActs& a, float* dx) {
  const auto& c = model_.config();
  const model::LayerWeights& L = model_.weights().layers[il];
  const int64_t T = T_, d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), hd = c.head_dim, ff = c.n_ff;
  const float s = params_.scale();
  // dx_in of y = W·x + s·B·A·x (+ bias) given dy, accumulated into dxv.
  auto linear_back = [&](const ops::MatrixView& W, LoraTarget tg, const float* x, const float* dy, float* dxv) {
    linear_t_add(W, dy, T, dxv);
    if (LoraFactor* f = params_.factor(il, tg))
      lora_backward(*f, s, x, a.u[static_cast<int>(tg)].data(), dy, T, dxv, pool_, scratch_);
  };
  // Through a post-norm (or not): the gradient at the sub-layer's raw output.
  auto through_post_norm = [&](bool on, const std::vector<float>& w, const std::vector<float>& raw,
                               std::vector<float>& out) -> const float* {
    if (!on) return dx;
    zero(out, T * d);
    for (int64_t t = 0; t < T; ++t) rmsnorm_backward(&raw[t * d], w.data(), dx + t * d, &out[t * d], d, c.norm_eps);
    return out.data();
  };

  // --- feed-forward: x_out = x_mid + post_norm(W_down·(act(gate)·up)) ---
  const float* df = through_post_norm(c.post_ffn_norm, L.post_ffn_norm, a.f, a.d1);
  zero(a.dh, T * ff);
  linear_back(L.w_down, LoraTarget::Down, a.h.data(), df, a.dh.data());
  size(a.dgate, T * ff);
  size(a.dup, T * ff);
  glu_backward(c.mlp == model::MlpKind::GeGLU, a.gate.data(), a.up.data(), a.dh.data(), a.dgate.data(), a.dup.data(),
               T * ff);
  zero(a.d2, T * d);  // d xn2
  linear_back(L.w_gate, LoraTarget::Gate, a.xn2.data(), a.dgate.data(), a.d2.data());
  linear_back(L.w_up, LoraTarget::Up, a.xn2.data(), a.dup.data(), a.d2.data());
  for (int64_t t = 0; t < T; ++t)  // dx becomes d x_mid
    rmsnorm_backward(&a.x_mid[t * d], L.ffn_norm.data(), &a.d2[t * d], dx + t * d, d, c.norm_eps);

  // --- attention: x_mid = x_in + post_norm(W_o·attn(rope(norm(q)), rope(norm(k)), v)) ---
  const float* dout = through_post_norm(c.post_attn_norm, L.post_attn_norm, a.o, a.d1);
  zero(a.d3, T * qd);  // d attn
  linear_back(L.wo, LoraTarget::O, a.attn.data(), dout, a.d3.data());
  const AttentionShape as{T, c.n_head, c.n_head_kv, hd, c.attn_scale, c.attn_softcap,
                          c.layer_swa[il] ? c.sliding_window : 0};
  size(a.dq, T * qd);
  size(a.dk, T * kvd);
  size(a.dv, T * kvd);
  attention_backward(as, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), a.d3.data(), a.dq.data(), a.dk.data(),
                     a.dv.data(), pool_);
  // RoPE is a rotation: its backward rotates by the opposite angle (sin negated).
  std::vector<float> cs_neg(static_cast<size_t>(c.n_rot));
  zero(a.dq0, T * qd);
  zero(a.dk0, T * kvd);
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = &rope_cs_[t * c.n_rot];
    for (int64_t i = 0; i < c.n_rot; i += 2) {
      cs_neg[i] = cs[i];
      cs_neg[i + 1] = -cs[i + 1];
    }
    auto back = [&](float* g, float* g0, const float* pre, const std::vector<float>& norm_w) {
      ops::rope_apply(g, hd, c.n_rot, cs_neg.data(), c.rope_neox);
      if (c.qk_norm) rmsnorm_backward(pre, norm_w.data(), g, g0, hd, c.norm_eps);
      else std::copy_n(g, hd, g0);
    };
    for (int64_t h = 0; h < c.n_head; ++h)
      back(&a.dq[t * qd + h * hd], &a.dq0[t * qd + h * hd], &a.q0[t * qd + h * hd], L.q_norm);
    for (int64_t h = 0; h < c.n_head_kv; ++h)
      back(&a.dk[t * kvd + h * hd], &a.dk0[t * kvd + h * hd], &a.k0[t * kvd + h * hd], L.k_norm);
  }
  zero(a.d2, T * d);  // d xn1
  linear_back(L.wq, LoraTarget::Q, a.xn1.data(), a.dq0.data(), a.d2.data());
  linear_back(L.wk, LoraTarget::K, a.xn1.data(), a.dk0.data(), a.d2.data());
  linear_back(L.wv, LoraTarget::V, a.xn1.data(), a.dv.data(), a.d2.data());
  for (int64_t t = 0; t < T; ++t)  // dx becomes d x_in
    rmsnorm_backward(x_in + t * d, L.attn_norm.data(), &a.d2[t * d], dx + t * d, d, c.norm_eps);
}

LossSum Trainer::head(const Example& ex, const float* x, float* dx, const float* x_base) {
  const auto& c = model_.config();
  const auto& W = model_.weights();
  const int64_t d = c.n_embd, V = c.n_vocab;
  const double kl_w = x_base ? ex.kl_weight : 0.0;
  const double hinge_w = x_base ? ex.hinge_weight : 0.0;
  const bool with_base = kl_w > 0 || hinge_w > 0;  // the base's logits are needed at these rows
  const double ce_w = ex.ce_weight;
  std::vector<int64_t> rows;  // positions t whose next token is a target
  for (int64_t t = 0; t + 1 < T_; ++t)
    if (ex.target[t + 1]) rows.push_back(t);
  if (dx) std::fill(dx, dx + T_ * d, 0.0f);
  LossSum out;
  std::vector<float> xf, logits, base_logits, dxf;
  std::vector<double> row_loss, row_kl, row_hinge;
  auto softcap = [&](float* l) {
    if (c.final_softcap > 0)
      for (int64_t i = 0; i < V; ++i) l[i] = c.final_softcap * std::tanh(l[i] / c.final_softcap);
  };
  auto log_sum_exp = [&](const float* l) {
    double mx = l[0];
    for (int64_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
    double sum = 0.0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(l[i] - mx);
    return mx + std::log(sum);
  };
  // 1 + boost·exp(-margin / tau) from the base's (soft-capped) logits: the margin between its top two
  // tokens is their log-probability difference. Depends on the frozen base only, so it scales the
  // KL's gradient without adding a term.
  auto margin_weight = [&](const float* lb) {
    if (ex.kl_margin_boost == 0.0f) return 1.0;
    float top1 = -INFINITY, top2 = -INFINITY;
    for (int64_t i = 0; i < V; ++i)
      if (lb[i] > top1) top2 = top1, top1 = lb[i];
      else if (lb[i] > top2) top2 = lb[i];
    const double margin = static_cast<double>(top1) - top2;
    return 1.0 + ex.kl_margin_boost * std::exp(-margin / ex.kl_margin_tau);
  };
  // Index of the largest of l[0..V) other than `skip` (-1: none skipped).
  auto argmax = [&](const float* l, int64_t skip) {
    int64_t best = skip == 0 ? 1 : 0;
    for (int64_t i = best + 1; i < V; ++i)
      if (i != skip && l[i] > l[best]) best = i;
    return best;
  };
  for (size_t r0 = 0; r0 < rows.size(); r0 += kHeadRows) {
    const int64_t R = std::min<int64_t>(kHeadRows, static_cast<int64_t>(rows.size() - r0));
    xf.resize(R * d);
    logits.resize(R * V);
    if (with_base) {  // the base model's logits at the same rows
      base_logits.resize(R * V);
      for (int64_t r = 0; r < R; ++r)
        ops::rmsnorm(x_base + rows[r0 + r] * d, W.output_norm.data(), &xf[r * d], d, c.norm_eps);
      ops::matmul(W.output, xf.data(), R, base_logits.data(), pool_);
    }
    for (int64_t r = 0; r < R; ++r) ops::rmsnorm(x + rows[r0 + r] * d, W.output_norm.data(), &xf[r * d], d, c.norm_eps);
    ops::matmul(W.output, xf.data(), R, logits.data(), pool_);
    row_loss.assign(R, 0.0);
    row_kl.assign(R, 0.0);
    row_hinge.assign(R, 0.0);
    pool_.parallel_for(R, [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) {
        float* l = &logits[r * V];
        float* lb = with_base ? &base_logits[r * V] : nullptr;
        const int32_t target = ex.tokens[rows[r0 + r] + 1];
        softcap(l);
        const double lse = log_sum_exp(l);
        row_loss[r] = ce_w * (lse - l[target]);
        double lse_b = 0.0, kl_row_w = 0.0;
        if (lb) softcap(lb);
        // The hinge on the base's choice c: active when the adapted margin l_c - l_runner-up falls below
        // γ = min(base margin, cap); its subgradient is -1 on l_c, +1 on the runner-up.
        int64_t h_chosen = -1, h_runner = -1;
        if (hinge_w > 0) {
          const int64_t cb = argmax(lb, -1);
          const double gamma =
              std::min(static_cast<double>(lb[cb]) - lb[argmax(lb, cb)], static_cast<double>(ex.hinge_margin_cap));
          const int64_t ru = argmax(l, cb);
          const double h = gamma - (static_cast<double>(l[cb]) - l[ru]);
          if (h > 0) {
            row_hinge[r] = h;
            row_loss[r] += hinge_w * h;
            h_chosen = cb, h_runner = ru;
          }
        }
        if (kl_w > 0) {
          // KL(p_base || p) = sum_i p_base,i (log p_base,i - log p_i).
          lse_b = log_sum_exp(lb);
          double kl = 0.0;
          for (int64_t i = 0; i < V; ++i) {
            const double lpb = lb[i] - lse_b;
            kl += std::exp(lpb) * (lpb - (l[i] - lse));
          }
          row_kl[r] = kl;
          kl_row_w = kl_w * margin_weight(lb);
          row_loss[r] += kl_row_w * kl;
        }
        if (!dx) continue;
        // d loss / d logit = ce_weight·(softmax - one-hot), + kl_weight·w·(softmax - p_base) with the KL
        // term (w the margin weight), ∓ hinge_weight on the chosen / runner-up logit with an active hinge
        // (all through the soft-cap's tanh when present).
        for (int64_t i = 0; i < V; ++i) {
          const double p = std::exp(l[i] - lse);
          double g = ce_w * (p - (i == target ? 1.0 : 0.0));
          if (kl_w > 0) g += kl_row_w * (p - std::exp(lb[i] - lse_b));
          if (i == h_chosen) g -= hinge_w;
          if (i == h_runner) g += hinge_w;
          if (c.final_softcap > 0) {
            const double th = l[i] / c.final_softcap;
            g *= 1.0 - th * th;
          }
          l[i] = static_cast<float>(g);
        }
      }
    });
    for (int64_t r = 0; r < R; ++r) {
      out.loss += row_loss[r], out.kl += row_kl[r], out.hinge += row_hinge[r];
      out.n_hinge_active += row_hinge[r] > 0;
    }
    out.n += R;
    if (kl_w > 0) out.n_kl += R;
    if (hinge_w > 0) out.n_hinge += R;
    if (!dx) continue;
    zero(dxf, R * d);
    linear_t_add(W.output, logits.data(), R, dxf.data());
    for (int64_t r = 0; r < R; ++r)
      rmsnorm_backward(x + rows[r0 + r] * d, W.output_norm.data(), &dxf[r * d], dx + rows[r0 + r] * d, d, c.norm_eps);
  }
  return out;
}

std::vector<float> Trainer::forward_layers(const Example& ex, bool adapter_off) {
  const auto& c = model_.config();
  T_ = static_cast<int64_t>(ex.tokens.size());
  rope_base_ = 0.0f;
  const int64_t d = c.n_embd;
  std::vector<float> x(static_cast<size_t>(T_ * d)), y(x.size());
  embed(ex, x.data());
  LayerActs a;
  adapter_off_ = adapter_off;
  // Cleared on every exit, a throw included: a later pass must not run without the adapter.
  struct Restore {
    bool& flag;
    ~Restore() { flag = false; }
  } restore{adapter_off_};
  for (int32_t il = 0; il < c.n_layer; ++il) {
    layer_forward(il, x.data(), y.data(), a);
    x.swap(y);
  }
  return x;
}

LossSum Trainer::forward_backward(const Example& ex) {
  check(ex);
  if (ex.n_targets() == 0) return {};
  const auto& c = model_.config();
  const bool base = ex.kl_weight > 0 || ex.hinge_weight > 0;
  const std::vector<float> x_base = base ? forward_layers(ex, /*adapter_off=*/true) : std::vector<float>{};
  T_ = static_cast<int64_t>(ex.tokens.size());
  rope_base_ = 0.0f;
  const int64_t d = c.n_embd, nl = c.n_layer, T = T_;
  // The input of every layer (and the last output): the only activations kept across layers.
  std::vector<float> xs(static_cast<size_t>((nl + 1) * T * d));
  embed(ex, xs.data());
  LayerActs a;
  for (int32_t il = 0; il < nl; ++il) layer_forward(il, &xs[il * T * d], &xs[(il + 1) * T * d], a);
  std::vector<float> dx(static_cast<size_t>(T * d)), discard(static_cast<size_t>(T * d));
  const LossSum loss = head(ex, &xs[nl * T * d], dx.data(), x_base.empty() ? nullptr : x_base.data());
  for (int32_t il = static_cast<int32_t>(nl) - 1; il >= 0; --il) {
    if (il != nl - 1) layer_forward(il, &xs[il * T * d], discard.data(), a);  // recompute this layer's activations
    layer_backward(il, &xs[il * T * d], a, dx.data());
  }
  return loss;
}

LossSum Trainer::evaluate(const Example& ex) {
  check(ex);
  if (ex.n_targets() == 0) return {};
  const std::vector<float> x = forward_layers(ex, /*adapter_off=*/false);
  return head(ex, x.data(), nullptr);
}

}  // namespace edgellm::train
