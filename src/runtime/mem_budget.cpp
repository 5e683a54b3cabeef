#include "runtime/mem_budget.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/tensor_type.h"
#include "ops/ops.h"
#include "util/error.h"

namespace edgellm::runtime {

uint64_t tokenizer_bytes(const io::GgufFile& f) {
  const auto count = [&](const char* key) -> uint64_t {
    const io::Value* v = f.find(key);
    return v && v->is_array() ? v->array_size() : 0;
  };
  return 224 * count("tokenizer.ggml.tokens") + 80 * count("tokenizer.ggml.merges");
}

WeightMemory estimate_weights(const io::GgufFile& f, const model::ModelConfig& c) {
  // Mirrors model::load_weights: 1-D tensors become fp32 vectors; matrices are repacked when
  // ops::repack_preferred says so (the file's pages are released as the copy grows), else read
  // in place; the embedding is read in place, and repacked once more as the output head when tied.
  WeightMemory w;
  const bool tied = f.find_tensor("output.weight") == nullptr;
  auto add_type = [&](io::TensorType t) {
    const std::string name(io::type_name(t));
    if (std::find(w.repacked_types.begin(), w.repacked_types.end(), name) == w.repacked_types.end())
      w.repacked_types.push_back(name);
  };
  for (const io::TensorInfo& t : f.tensors()) {
    w.file_bytes += t.nbytes;
    if (t.ne.size() < 2) {
      w.vectors += static_cast<uint64_t>(t.n_elements()) * sizeof(float);
      continue;
    }
    ops::MatrixView m;
    m.type = t.type;
    m.n_in = t.ne[0];
    m.n_out = t.rows();
    m.row_stride = io::row_bytes(t.type, m.n_in);
    const bool embd = t.name == "token_embd.weight";
    const bool repack = ops::repack_preferred(t.type) && (!embd || tied);
    if (embd) w.embedding += t.nbytes;
    if (repack) {
      const bool layer = t.name.rfind("blk.", 0) == 0 && t.name.find('.', 4) != std::string::npos;
      const std::string key = layer ? t.name.substr(t.name.find('.', 4) + 1) : t.name;
      auto it = std::find_if(w.repacked_names.begin(), w.repacked_names.end(),
                             [&](const auto& p) { return p.first == key; });
      if (it == w.repacked_names.end()) w.repacked_names.push_back({key, 1});
      else ++it->second;
      w.repacked += ops::repacked_bytes(m);
      ++w.n_repacked;
      add_type(t.type);
      if (!embd) w.repacked_src += t.nbytes;
    } else if (!embd) {
      w.mapped += t.nbytes;
    }
  }
  (void)c;
  return w;
}

uint64_t workspace_bytes(const model::ModelConfig& c, int32_t n_batch, int32_t n_ctx, int32_t n_threads,
                         int32_t n_logit_rows) {
  // The buffers model::Model::forward grows (see model::Workspace), in floats.
  const uint64_t n = static_cast<uint64_t>(std::max(n_batch, 1));
  const uint64_t d = c.n_embd, qd = c.q_dim(), kvd = c.kv_dim(), ff = c.n_ff;
  const uint64_t rot = std::max<int32_t>(c.n_rot, 1);
  uint64_t floats = n * (3 * d + 2 * qd + 2 * kvd + 2 * ff + rot);  // x xn proj, q attn, k v, gate up, rope
  floats += static_cast<uint64_t>(std::max(n_threads, 1)) * static_cast<uint64_t>(n_ctx);  // scores
  const uint64_t rows = static_cast<uint64_t>(std::max(n_logit_rows, 1));
  floats += rows * d;                  // gathered hidden rows for the output head
  floats += rows * c.n_vocab;          // the caller's logits
  return floats * sizeof(float);
}

uint64_t physical_ram_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

uint64_t parse_mem_size(const std::string& text, uint64_t physical_ram) {
  auto bad = [&] {
    return InvalidArgument("bad memory size '" + text +
                           "': use e.g. 1.5G, 800M, 512K, a byte count, or a fraction of RAM such as 0.5");
  };
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(text, &used);
  } catch (const std::exception&) {
    throw bad();
  }
  if (!std::isfinite(x) || x <= 0) throw bad();
  std::string unit = text.substr(used);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();   // "GB", "GiB" -> "G", "Gi"
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  double mult = 0;
  if (unit.empty()) {
    if (x <= 1.0) {  // a fraction of physical RAM
      if (physical_ram == 0) throw InvalidArgument("cannot read this machine's RAM size for --mem-budget " + text);
      return static_cast<uint64_t>(x * static_cast<double>(physical_ram));
    }
    mult = 1;
  } else if (unit == "B") mult = 1;
  else if (unit == "K") mult = 1024.0;
  else if (unit == "M") mult = 1024.0 * 1024;
  else if (unit == "G") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  else throw bad();
  const double bytes = x * mult;
  if (bytes < 1 || bytes > 1e18) throw bad();
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t n) {
  char buf[32];
  const double x = static_cast<double>(n);
  if (x >= 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f GiB", x / (1024.0 * 1024 * 1024));
  else if (x >= 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", x / (1024.0 * 1024));
  else if (x >= 1024.0) std::snprintf(buf, sizeof buf, "%.1f KiB", x / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  return buf;
}

BudgetChoice choose_memory(const BudgetRequest& r) {
  if (r.kv_candidates.empty()) throw InvalidArgument("choose_memory: no KV cache types to choose from");
  if (r.n_ctx_max <= 0 || r.n_slots_max <= 0)
    throw InvalidArgument("choose_memory: context and slot count must be positive");
  auto kv = [](const BudgetRequest::Kv& k, int32_t ctx, int32_t slots) {
    return k.per_token * static_cast<uint64_t>(ctx) * static_cast<uint64_t>(slots);
  };
  auto fits = [&](uint64_t kv_bytes) { return r.fixed <= r.budget && kv_bytes <= r.budget - r.fixed; };
  auto make = [&](const BudgetRequest::Kv& k, int32_t ctx, int32_t slots) {
    BudgetChoice c;
    c.n_ctx = ctx;
    c.n_slots = slots;
    c.kv_types = k.types;
    c.kv_bytes = kv(k, ctx, slots);
    c.total = r.fixed + c.kv_bytes;
    return c;
  };
  for (int32_t slots = r.n_slots_max; slots >= 1; --slots)
    for (const auto& k : r.kv_candidates)
      if (fits(kv(k, r.n_ctx_max, slots))) return make(k, r.n_ctx_max, slots);
  // One slot of the full context does not fit: the most compact type, the longest context.
  const auto& compact = *std::min_element(r.kv_candidates.begin(), r.kv_candidates.end(),
                                          [](const auto& a, const auto& b) { return a.per_token < b.per_token; });
  const int32_t min_ctx = std::min(r.n_ctx_min, r.n_ctx_max);
  if (fits(kv(compact, min_ctx, 1)) && compact.per_token > 0) {
    const uint64_t room = (r.budget - r.fixed) / compact.per_token;
    int32_t ctx = static_cast<int32_t>(std::min<uint64_t>(room, static_cast<uint64_t>(r.n_ctx_max)));
    ctx = std::max(ctx / 256 * 256, min_ctx);
    return make(compact, ctx, 1);
  }
  throw InvalidArgument("the model does not fit in the memory budget " + format_bytes(r.budget) +
                        ": its weights and workspace take " + format_bytes(r.fixed) + " and a context of " +
                        std::to_string(min_ctx) + " tokens (" + model::kv_type_name(compact.types.k) + "/" +
                        model::kv_type_name(compact.types.v) + " cache) needs " +
                        format_bytes(r.fixed + kv(compact, min_ctx, 1)) + " at least");
}

}  // namespace edgellm::runtime
