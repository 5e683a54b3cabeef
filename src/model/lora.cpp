#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "model/model.h"
#include "ops/ops.h"

namespace edgellm::model {
namespace {

constexpr std::string_view kSuffixA = ".lora_a", kSuffixB = ".lora_b";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const io::TensorInfo& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.ne.size(); ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

bool factor_type_ok(io::TensorType t) {
  using io::TensorType;
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16 || t == TensorType::Q8_0;
}

// A 2-D tensor (trailing dimensions of 1 allowed, as some writers pad them).
bool is_2d(const io::TensorInfo& t) {
  if (t.ne.size() < 2) return false;
  for (size_t i = 2; i < t.ne.size(); ++i)
    if (t.ne[i] != 1) return false;
  return t.ne[0] > 0 && t.ne[1] > 0;
}

struct PairInfo {
  const io::TensorInfo* a = nullptr;
  const io::TensorInfo* b = nullptr;
};

// Pairs lora_a with lora_b by base name, in file order; records skipped norm tensors.
std::vector<std::pair<std::string, PairInfo>> collect_pairs(const io::GgufFile& f, LoraInfo& info) {
  std::vector<std::pair<std::string, PairInfo>> pairs;
  std::map<std::string, size_t, std::less<>> index;
  for (const io::TensorInfo& t : f.tensors()) {
    const bool is_a = ends_with(t.name, kSuffixA), is_b = ends_with(t.name, kSuffixB);
    if (!is_a && !is_b) {
      // llama.cpp skips norm vectors in adapters (PEFT's modules_to_save); so do we, and say so.
      if (ends_with(t.name, "_norm.weight")) {
        info.ignored.push_back(t.name);
        continue;
      }
      throw LoraFormatError(f.path() + ": unexpected tensor '" + t.name +
                            "' (a LoRA adapter holds only <base tensor>.lora_a / .lora_b pairs)");
    }
    const std::string base = t.name.substr(0, t.name.size() - kSuffixA.size());
    auto [it, fresh] = index.try_emplace(base, pairs.size());
    if (fresh) pairs.push_back({base, {}});
    PairInfo& p = pairs[it->second].second;
    (is_a ? p.a : p.b) = &t;  // GGUF names are unique (the reader rejects duplicates)
  }
  return pairs;
}

}  // namespace

const char* lora_target_name(LoraTarget t) {
  static constexpr const char* kNames[kLoraTargets] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                       "ffn_gate", "ffn_up", "ffn_down"};
  return kNames[static_cast<int>(t)];
}

LoraInfo inspect_lora(const io::GgufFile& f) {
  const std::string& path = f.path();
  const auto type = f.get_string("general.type");
  if (!type || *type != "adapter") {
    std::string hint = type ? "general.type is '" + *type + "'" : "it has no general.type";
    if (!type || *type == "model") hint += "; a model file goes to -m, not --lora";
    throw LoraFormatError(path + ": not a LoRA adapter (" + hint + ", expected 'adapter')");
  }
  const auto adapter_type = f.get_string("adapter.type");
  if (!adapter_type || *adapter_type != "lora")
    throw LoraFormatError(path + ": adapter.type is " + (adapter_type ? "'" + *adapter_type + "'" : "missing") +
                          "; only 'lora' adapters are supported");
  // Activated LoRA applies only after an invocation sequence; running it always would be wrong.
  for (const auto& [key, value] : f.metadata())
    if (key.rfind("adapter.alora.", 0) == 0)
      throw LoraFormatError(path + ": activated LoRA ('" + key + "') is not supported");
  LoraInfo info;
  info.arch = f.require_string("general.architecture");
  info.name = f.get_string("general.name").value_or("");
  const double alpha = f.get_float("adapter.lora.alpha").value_or(0.0);
  if (!std::isfinite(alpha) || std::abs(alpha) > 1e30)
    throw LoraFormatError(path + ": adapter.lora.alpha is not a finite number");
  info.alpha = static_cast<float>(alpha);

  for (const auto& [base, p] : collect_pairs(f, info)) {
    if (!p.a || !p.b)
      throw LoraFormatError(path + ": '" + base + "' has " + (p.a ? "lora_a but no lora_b" : "lora_b but no lora_a"));
    for (const io::TensorInfo* t : {p.a, p.b}) {
      if (!is_2d(*t))
        throw LoraFormatError(path + ": tensor '" + t->name + "' has shape " + shape_str(*t) + ", expected 2-D");
      if (!factor_type_ok(t->type))
        throw LoraFormatError(path + ": tensor '" + t->name + "' has type " + std::string(io::type_name(t->type)) +
                              "; LoRA factors must be F32, F16, BF16 or Q8_0");
    }
    // lora_a [n_in, rank], lora_b [rank, n_out]: the ranks must agree.
    if (p.a->ne[1] != p.b->ne[0])
      throw LoraFormatError(path + ": rank mismatch for '" + base + "': lora_a " + shape_str(*p.a) + " has rank " +
                            std::to_string(p.a->ne[1]) + ", lora_b " + shape_str(*p.b) + " has rank " +
                            std::to_string(p.b->ne[0]) + " (lora_a must be [n_in, rank], lora_b [rank, n_out])");
    const int64_t rank = p.b->ne[0];
    if (rank > (int64_t{1} << 20)) throw LoraFormatError(path + ": rank " + std::to_string(rank) + " is implausible");
    info.rank_min = info.n_pairs ? std::min<int32_t>(info.rank_min, static_cast<int32_t>(rank)) : static_cast<int32_t>(rank);
    info.rank_max = std::max<int32_t>(info.rank_max, static_cast<int32_t>(rank));
    info.n_params += static_cast<uint64_t>(p.a->n_elements() + p.b->n_elements());
    ++info.n_pairs;
    info.targets.push_back(base);
  }
  if (info.n_pairs == 0) throw LoraFormatError(path + ": the adapter has no lora_a / lora_b tensor pairs");
  return info;
}

namespace {

// "blk.<layer>.<target>.weight" -> (layer, target); false for any other name.
bool parse_target(const std::string& name, int32_t n_layer, int32_t& layer, LoraTarget& target) {
  if (name.rfind("blk.", 0) != 0) return false;
  size_t i = 4, digits = 0;
  int64_t il = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 9; ++i, ++digits) il = il * 10 + (name[i] - '0');
  if (digits == 0 || i >= name.size() || name[i] != '.' || il >= n_layer) return false;
  const std::string rest = name.substr(i + 1);
  for (int t = 0; t < kLoraTargets; ++t)
    if (rest == std::string(lora_target_name(static_cast<LoraTarget>(t))) + ".weight") {
      layer = static_cast<int32_t>(il);
      target = static_cast<LoraTarget>(t);
      return true;
    }
  return false;
}

std::vector<float> to_f32(const io::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  // Rows are whole blocks (ne[0] % block == 0, checked by the reader), so the tensor is one run.
  ops::dequantize_row(t.type, t.data, out.data(), t.n_elements());
  return out;
}

}  // namespace

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& path, const Model& base) {
  auto f = io::GgufFile::open(path);
  return from_file(*f, base);
}

std::shared_ptr<const LoraAdapter> LoraAdapter::from_file(const io::GgufFile& f, const Model& base) {
  const ModelConfig& c = base.config();
  std::shared_ptr<LoraAdapter> ad(new LoraAdapter());
  ad->path_ = f.path();
  ad->info_ = inspect_lora(f);
  if (ad->info_.arch != c.arch)
    throw LoraFormatError(f.path() + ": the adapter is for architecture '" + ad->info_.arch + "', the model is '" +
                          c.arch + "'");
  ad->arch_ = c.arch;
  ad->n_embd_ = c.n_embd;
  ad->q_dim_ = c.q_dim();
  ad->kv_dim_ = c.kv_dim();
  ad->n_ff_ = c.n_ff;
  ad->layers_.resize(c.n_layer);
  for (const std::string& name : ad->info_.targets) {
    const io::TensorInfo& a = *f.find_tensor(name + std::string(kSuffixA));
    const io::TensorInfo& b = *f.find_tensor(name + std::string(kSuffixB));
    const io::TensorInfo* w = base.file().find_tensor(name);
    if (!w)
      throw LoraFormatError(f.path() + ": '" + name + "' does not exist in the base model " + base.file().path() +
                            " (an adapter for another model?)");
    int32_t il = 0;
    LoraTarget tg{};
    if (!parse_target(name, c.n_layer, il, tg))
      throw LoraFormatError(f.path() + ": LoRA on '" + name +
                            "' is not supported (edgellm adapts attention q/k/v/output and FFN gate/up/down)");
    // A fused gate+up matrix (Phi-3) is read as two views; an update of the whole would not fit either.
    if (c.fused_gate_up && (tg == LoraTarget::Up || tg == LoraTarget::Gate))
      throw LoraFormatError(f.path() + ": LoRA on '" + name + "' is not supported: in " + c.arch +
                            " it holds the fused FFN gate and up projections");
    // The base matrix is [n_in, n_out] (ggml order), validated at model load.
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    if (a.ne[0] != n_in || b.ne[1] != n_out)
      throw LoraFormatError(f.path() + ": wrong shape for '" + name + "' [" + std::to_string(n_in) + ", " +
                            std::to_string(n_out) + "]: lora_a is " + shape_str(a) + ", lora_b " + shape_str(b) +
                            " (expected [" + std::to_string(n_in) + ", rank] and [rank, " + std::to_string(n_out) +
                            "]; an adapter for another model?)");
    LoraPair& p = ad->layers_[il][static_cast<int>(tg)];
    p.rank = static_cast<int32_t>(a.ne[1]);
    p.n_in = n_in;
    p.n_out = n_out;
    p.a = to_f32(a);  // [rank][n_in]
    const std::vector<float> bf = to_f32(b);  // [n_out][rank]
    p.bt.resize(bf.size());
    for (int64_t o = 0; o < n_out; ++o)
      for (int32_t r = 0; r < p.rank; ++r) p.bt[r * n_out + o] = bf[o * p.rank + r];
  }
  return ad;
}

bool LoraAdapter::fits(const ModelConfig& c) const {
  return c.arch == arch_ && c.n_layer == static_cast<int32_t>(layers_.size()) && c.n_embd == n_embd_ &&
         c.q_dim() == q_dim_ && c.kv_dim() == kv_dim_ && c.n_ff == n_ff_;
}

size_t LoraAdapter::bytes() const {
  size_t n = 0;
  for (const auto& layer : layers_)
    for (const LoraPair& p : layer) n += (p.a.size() + p.bt.size()) * sizeof(float);
  return n;
}

void apply_lora(const LoraSet* const* sets, int64_t n, int32_t layer, LoraTarget target, const float* x,
                int64_t n_in, float* y, int64_t n_out, ops::ThreadPool& pool, std::vector<float>& scratch) {
  int32_t max_rank = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (!sets[t] || (t > 0 && sets[t] == sets[t - 1])) continue;
    for (const LoraEntry& e : sets[t]->entries)
      if (const LoraPair* p = e.adapter->pair(layer, target)) {
        if (p->n_in != n_in || p->n_out != n_out)
          throw InvalidArgument("LoRA adapter " + e.adapter->path() + " does not fit this model's " +
                                lora_target_name(target) + " projection");
        max_rank = std::max(max_rank, p->rank);
      }
  }
  if (max_rank == 0) return;
  if (scratch.size() < static_cast<size_t>(pool.size()) * max_rank) scratch.resize(static_cast<size_t>(pool.size()) * max_rank);

  auto one = [&](int64_t t, float* u) {
    if (!sets[t]) return;
    const float* xt = x + t * n_in;
    float* yt = y + t * n_out;
    for (const LoraEntry& e : sets[t]->entries) {
      const LoraPair* p = e.adapter->pair(layer, target);
      if (!p) continue;
      const float s = e.adapter->scale(*p, e.scale);
      if (s == 0.0f) continue;  // scale 0 leaves the base output bit for bit
      for (int32_t r = 0; r < p->rank; ++r) u[r] = s * ops::dot_f32(&p->a[r * n_in], xt, n_in);
      for (int32_t r = 0; r < p->rank; ++r) ops::axpy_f32(u[r], &p->bt[r * n_out], yt, n_out);
    }
  };
  if (n == 1 || pool.size() == 1) {
    for (int64_t t = 0; t < n; ++t) one(t, scratch.data());
    return;
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
    for (int64_t t = b; t < e; ++t) one(t, &scratch[static_cast<size_t>(thread) * max_rank]);
  });
}

}  // namespace edgellm::model
