#include "train/lora_params.h"

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "io/gguf_writer.h"
#include "io/tensor_type.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::train {
namespace {

using model::LoraTarget;
constexpr const char* kShortNames[model::kLoraTargets] = {"q", "k", "v", "o", "gate", "up", "down"};

std::string tensor_name(int32_t il, LoraTarget t) {
  return "blk." + std::to_string(il) + "." + model::lora_target_name(t) + ".weight";
}

void add_f32(io::GgufWriter& w, const std::string& name, const std::vector<int64_t>& ne, const std::vector<float>& v) {
  w.add_tensor_view(name, io::TensorType::F32, ne, v.data(), v.size() * sizeof(float));
}

std::vector<float> transpose(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> out(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = x[r * cols + c];
  return out;
}

}  // namespace

std::array<bool, model::kLoraTargets> parse_lora_targets(const std::string& list) {
  std::array<bool, model::kLoraTargets> out{};
  if (list == "all") {
    out.fill(true);
    return out;
  }
  std::stringstream ss(list);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    bool found = false;
    for (int i = 0; i < model::kLoraTargets; ++i)
      if (item == kShortNames[i]) out[i] = found = any = true;
    if (!found)
      throw InvalidArgument("unknown LoRA target '" + item + "' (choose from q,k,v,o,gate,up,down or all)");
  }
  if (!any) throw InvalidArgument("no LoRA targets given");
  return out;
}

std::vector<bool> parse_lora_layers(const std::string& list, int32_t n_layer) {
  std::vector<bool> out(static_cast<size_t>(n_layer), list == "all");
  if (list == "all") return out;
  auto number = [&](const std::string& s, const std::string& item) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (s.empty() || used != s.size() || v < 0)
      throw InvalidArgument("--layers: '" + item + "' is not a layer number or a range FIRST-LAST");
    if (v >= n_layer)
      throw InvalidArgument("--layers: layer " + s + " does not exist (the model has layers 0-" +
                            std::to_string(n_layer - 1) + ")");
    return v;
  };
  std::stringstream ss(list);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    const size_t dash = item.find('-');
    const int first = number(item.substr(0, dash), item);
    const int last = dash == std::string::npos ? first : number(item.substr(dash + 1), item);
    if (last < first) throw InvalidArgument("--layers: the range '" + item + "' is empty");
    for (int il = first; il <= last; ++il) out[il] = any = true;
  }
  if (!any) throw InvalidArgument("no layers given to --layers");
  return out;
}

std::pair<int64_t, int64_t> target_shape(const model::ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::Q: return {c.n_embd, c.q_dim()};
    case LoraTarget::K:
    case LoraTarget::V: return {c.n_embd, c.kv_dim()};
    case LoraTarget::O: return {c.q_dim(), c.n_embd};
    case LoraTarget::Gate:
    case LoraTarget::Up: return {c.n_embd, c.n_ff};
    case LoraTarget::Down: return {c.n_ff, c.n_embd};
  }
  return {0, 0};
}

void LoraParams::allocate(int32_t il, LoraTarget t, int32_t rank) {
  LoraFactor& f = layers_[il][static_cast<int>(t)];
  auto [n_in, n_out] = target_shape(cfg_, t);
  f.n_in = n_in;
  f.n_out = n_out;
  f.rank = rank;
  for (auto* v : {&f.a, &f.ga, &f.ma, &f.va}) v->assign(static_cast<size_t>(rank) * n_in, 0.0f);
  for (auto* v : {&f.bt, &f.gbt, &f.mb, &f.vb}) v->assign(static_cast<size_t>(rank) * n_out, 0.0f);
}

LoraParams::LoraParams(const model::ModelConfig& m, const LoraTrainConfig& cfg) {
  if (cfg.rank <= 0 || cfg.rank > 1024) throw InvalidArgument("--rank must be in 1..1024");
  if (!std::isfinite(cfg.alpha) || cfg.alpha <= 0) throw InvalidArgument("--alpha must be a positive number");
  cfg_ = m;
  rank_ = cfg.rank;
  alpha_ = cfg.alpha;
  if (!cfg.layers.empty() && static_cast<int32_t>(cfg.layers.size()) != m.n_layer)
    throw InvalidArgument("the LoRA layer mask is for another number of layers");
  layers_.resize(m.n_layer);
  std::mt19937_64 rng(cfg.seed);
  for (int32_t il = 0; il < m.n_layer; ++il)
    for (int i = 0; i < model::kLoraTargets; ++i) {
      if (!cfg.targets[i] || (!cfg.layers.empty() && !cfg.layers[il])) continue;
      allocate(il, static_cast<LoraTarget>(i), cfg.rank);
      LoraFactor& f = layers_[il][i];
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      const float bound = 1.0f / std::sqrt(static_cast<float>(f.n_in));
      for (float& x : f.a) x = bound * u(rng);
    }
}

LoraParams LoraParams::from_adapter(const model::ModelConfig& m, const model::LoraAdapter& ad) {
  if (!ad.fits(m)) throw InvalidArgument(ad.path() + " was not made for this model");
  LoraParams p;
  p.cfg_ = m;
  p.alpha_ = ad.info().alpha;
  p.rank_ = ad.info().rank_max;
  if (ad.info().rank_min != ad.info().rank_max) throw InvalidArgument(ad.path() + ": factors of different ranks");
  if (p.alpha_ == 0.0f) p.alpha_ = static_cast<float>(p.rank_);  // scale 1, llama.cpp's rule for alpha 0
  p.layers_.resize(m.n_layer);
  for (int32_t il = 0; il < m.n_layer; ++il)
    for (int i = 0; i < model::kLoraTargets; ++i) {
      const auto t = static_cast<LoraTarget>(i);
      const model::LoraPair* src = ad.pair(il, t);
      if (!src) continue;
      p.allocate(il, t, src->rank);
      LoraFactor& f = p.layers_[il][i];
      f.a = src->a;
      f.bt = src->bt;
    }
  return p;
}

uint64_t LoraParams::n_params() const {
  uint64_t n = 0;
  for (const auto& layer : layers_)
    for (const LoraFactor& f : layer) n += f.a.size() + f.bt.size();
  return n;
}

void LoraParams::zero_grad() {
  for (auto& layer : layers_)
    for (LoraFactor& f : layer) {
      std::fill(f.ga.begin(), f.ga.end(), 0.0f);
      std::fill(f.gbt.begin(), f.gbt.end(), 0.0f);
    }
}

double LoraParams::adamw_step(const AdamW& o, double n) {
  const double inv = n > 0 ? 1.0 / n : 0.0;
  double sq = 0.0;
  for (const auto& layer : layers_)
    for (const LoraFactor& f : layer) {
      for (float g : f.ga) sq += static_cast<double>(g) * g;
      for (float g : f.gbt) sq += static_cast<double>(g) * g;
    }
  const double norm = std::sqrt(sq) * inv;
  if (!std::isfinite(norm)) return norm;  // no update: the caller stops with the last good state
  double k = inv;  // gradient multiplier: mean over tokens, then the clip
  if (o.clip_norm > 0 && norm > o.clip_norm) k *= o.clip_norm / norm;
  ++step_;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(o.beta2, static_cast<double>(step_));
  auto update = [&](std::vector<float>& w, const std::vector<float>& g, std::vector<float>& m, std::vector<float>& v) {
    for (size_t i = 0; i < w.size(); ++i) {
      const float gi = static_cast<float>(g[i] * k);
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const double mh = m[i] / bc1, vh = v[i] / bc2;
      w[i] -= static_cast<float>(o.lr * (mh / (std::sqrt(vh) + o.eps) + o.weight_decay * w[i]));
    }
  };
  for (auto& layer : layers_)
    for (LoraFactor& f : layer) {
      if (f.rank == 0) continue;
      update(f.a, f.ga, f.ma, f.va);
      update(f.bt, f.gbt, f.mb, f.vb);
    }
  return norm;
}

// A tensor of `ne[1]` rows of `ne[0]` floats in `type` (F16 where Q8_0 blocks do not fit a row).
static void add_typed(io::GgufWriter& w, const std::string& name, const std::vector<int64_t>& ne, const std::vector<float>& v,
               io::TensorType type) {
  if (type == io::TensorType::F32) return add_f32(w, name, ne, v);
  if (type == io::TensorType::Q8_0 && ne[0] % io::traits(type).block_elems != 0) type = io::TensorType::F16;
  const size_t row = io::row_bytes(type, ne[0]);
  std::vector<uint8_t> bytes(row * static_cast<size_t>(ne[1]));
  for (int64_t r = 0; r < ne[1]; ++r) ops::quantize_row(type, v.data() + r * ne[0], bytes.data() + r * row, ne[0]);
  w.add_tensor(name, type, ne, std::move(bytes));
}

void LoraParams::save_adapter(const std::string& path, const std::string& name, io::TensorType type) const {
  if (type != io::TensorType::F32 && type != io::TensorType::F16 && type != io::TensorType::Q8_0)
    throw InvalidArgument("an adapter is written as F32, F16 or Q8_0, not " + std::string(io::type_name(type)));
  io::GgufWriter w;
  w.set_string("general.architecture", cfg_.arch);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", name);
  w.set_string("adapter.type", "lora");
  w.set_f32("adapter.lora.alpha", alpha_);
  std::vector<std::vector<float>> b_rows;  // lora_b [n_out][rank], kept alive until write()
  b_rows.reserve(layers_.size() * model::kLoraTargets);
  for (int32_t il = 0; il < static_cast<int32_t>(layers_.size()); ++il)
    for (int i = 0; i < model::kLoraTargets; ++i) {
      const LoraFactor& f = layers_[il][i];
      if (f.rank == 0) continue;
      const std::string base = tensor_name(il, static_cast<LoraTarget>(i));
      add_typed(w, base + ".lora_a", {f.n_in, f.rank}, f.a, type);
      b_rows.push_back(transpose(f.bt, f.rank, f.n_out));
      add_typed(w, base + ".lora_b", {f.rank, f.n_out}, b_rows.back(), type);
    }
  w.write(path);
}

void LoraParams::save_checkpoint(const std::string& path,
                                 const std::vector<std::pair<std::string, int64_t>>& extra) const {
  io::GgufWriter w;
  w.set_string("general.architecture", cfg_.arch);
  w.set_string("general.type", "edgellm.lora_checkpoint");
  w.set_f32("adapter.lora.alpha", alpha_);
  w.set_i32("train.rank", rank_);
  w.set_i64("train.step", step_);
  for (const auto& [k, v] : extra) w.set_i64("train." + k, v);
  for (int32_t il = 0; il < static_cast<int32_t>(layers_.size()); ++il)
    for (int i = 0; i < model::kLoraTargets; ++i) {
      const LoraFactor& f = layers_[il][i];
      if (f.rank == 0) continue;
      const std::string base = tensor_name(il, static_cast<LoraTarget>(i));
      add_f32(w, base + ".a", {f.n_in, f.rank}, f.a);
      add_f32(w, base + ".bt", {f.n_out, f.rank}, f.bt);
      add_f32(w, base + ".a.m", {f.n_in, f.rank}, f.ma);
      add_f32(w, base + ".a.v", {f.n_in, f.rank}, f.va);
      add_f32(w, base + ".bt.m", {f.n_out, f.rank}, f.mb);
      add_f32(w, base + ".bt.v", {f.n_out, f.rank}, f.vb);
    }
  w.write(path);
}

std::vector<std::pair<std::string, int64_t>> LoraParams::load_checkpoint(const std::string& path) {
  auto f = io::GgufFile::open(path);
  if (f->get_string("general.type").value_or("") != "edgellm.lora_checkpoint")
    throw Error(path + " is not an edgellm fine-tuning checkpoint");
  if (f->get_string("general.architecture").value_or("") != cfg_.arch)
    throw Error(path + ": the checkpoint is for another architecture");
  if (f->get_int("train.rank").value_or(-1) != rank_ ||
      static_cast<float>(f->get_float("adapter.lora.alpha").value_or(0)) != alpha_)
    throw Error(path + ": the checkpoint has another --rank or --alpha than this run");
  auto read = [&](const std::string& name, std::vector<float>& dst) {
    const io::TensorInfo* t = f->find_tensor(name);
    if (!t) throw Error(path + ": tensor '" + name + "' is missing (other --targets or another model?)");
    if (t->type != io::TensorType::F32 || t->nbytes != dst.size() * sizeof(float))
      throw Error(path + ": tensor '" + name + "' has the wrong type or shape for this model");
    std::memcpy(dst.data(), t->data, t->nbytes);
  };
  size_t expected = 0;
  for (int32_t il = 0; il < static_cast<int32_t>(layers_.size()); ++il)
    for (int i = 0; i < model::kLoraTargets; ++i) {
      LoraFactor& fa = layers_[il][i];
      if (fa.rank == 0) continue;
      const std::string base = tensor_name(il, static_cast<LoraTarget>(i));
      read(base + ".a", fa.a);
      read(base + ".bt", fa.bt);
      read(base + ".a.m", fa.ma);
      read(base + ".a.v", fa.va);
      read(base + ".bt.m", fa.mb);
      read(base + ".bt.v", fa.vb);
      expected += 6;
    }
  if (f->tensors().size() != expected)
    throw Error(path + ": the checkpoint adapts other projections than this run's --targets");
  step_ = f->get_int("train.step").value_or(0);
  std::vector<std::pair<std::string, int64_t>> extra;
  for (const auto& [k, v] : f->metadata())
    if (k.rfind("train.", 0) == 0 && k != "train.rank" && k != "train.step")
      if (auto x = f->get_int(k)) extra.emplace_back(k.substr(6), *x);
  return extra;
}

}  // namespace edgellm::train
