// Builds one KernelTable per Highway target and selects the active one (best available,
// or forced by EDGELLM_ISA / force_isa()).
#include "ops/hwy_config.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/kernel_table.h"
#include "ops/kernels_attention-inl.h"
#include "ops/kernels_attn_rows-inl.h"
#include "ops/kernels_q8gemm-inl.h"
#include "ops/kernels_gelu-inl.h"
#include "ops/kernels_elementwise-inl.h"
#include "ops/kernels_gemv-inl.h"
#include "ops/kernels_k8-inl.h"
#include "ops/kernels_kquant-inl.h"
#include "ops/kernels_quant-inl.h"
#include "ops/kernels_x4-inl.h"
#include "ops/kernels_x16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::ops::HWY_NAMESPACE {

const KernelTable* GetTable() {
  static const KernelTable table = {
      hwy::TargetName(HWY_TARGET),
      {
#if HWY_TARGET == HWY_SCALAR
          &Gemv<ScalarKern<io::TensorType::F32, float>>,
          &Gemv<ScalarKern<io::TensorType::F16, float>>,
          &Gemv<ScalarKern<io::TensorType::BF16, float>>,
          &Gemv<ScalarKern<io::TensorType::Q8_0, BlockQ8_A>>,
          &Gemv<ScalarKern<io::TensorType::Q4_0, BlockQ8_A>>,
          &Gemv<ScalarKern<io::TensorType::Q4_1, BlockQ8_A>>,
          &Gemv<ScalarKern<io::TensorType::Q5_0, BlockQ8_A>>,
          &Gemv<ScalarKern<io::TensorType::Q5_1, BlockQ8_A>>,
          &Gemv<ScalarKern<io::TensorType::Q4_K, BlockQ8_KA>>,
          &Gemv<ScalarKern<io::TensorType::Q5_K, BlockQ8_KA>>,
          &Gemv<ScalarKern<io::TensorType::Q6_K, BlockQ8_KA>>,
#else
          &Gemv<FloatKern<WF32>>,
          &Gemv<FloatKern<WF16>>,
          &Gemv<FloatKern<WBF16>>,
          &Gemv<LegacyKern<FmtQ8_0>>,
          &Gemv<LegacyKern<FmtQ4_0>>,
          &Gemv<LegacyKern<FmtQ4_1>>,
          &Gemv<LegacyKern<FmtQ5_0>>,
          &Gemv<LegacyKern<FmtQ5_1>>,
          &Gemv<Q45KKern<false>>,
          &Gemv<Q45KKern<true>>,
          &Gemv<Q6KKern>,
#endif
      },
      &QuantizeQ8A,
      &QuantizeQ8KA,
      &RmsNorm,
      &Softmax,
      &MaxChecked,
      &ExpSums,
      &DotF32,
      &AxpyF32,
      &AddF32,
      &ScaleF32,
      &SiluMul,
      &GeluMul,
      &AttendHeadKv,
      &AttendGroupKv,
#if HWY_TARGET == HWY_AVX3
      &AttendGroupKvQ8,
#else
      nullptr,
#endif
#if HWY_TARGET == HWY_SCALAR
      {&GemvX4Unpacked<ScalarKern<io::TensorType::Q4_0, BlockQ8_A>, io::TensorType::Q4_0>,
       &GemvX4Unpacked<ScalarKern<io::TensorType::Q4_1, BlockQ8_A>, io::TensorType::Q4_1>,
       &GemvX4Unpacked<ScalarKern<io::TensorType::Q8_0, BlockQ8_A>, io::TensorType::Q8_0>,
       &GemvX4Unpacked<ScalarKern<io::TensorType::Q5_0, BlockQ8_A>, io::TensorType::Q5_0>,
       &GemvX4Unpacked<ScalarKern<io::TensorType::Q5_1, BlockQ8_A>, io::TensorType::Q5_1>},
      {&GemvK8Unpacked<ScalarKern<io::TensorType::Q4_K, BlockQ8_KA>, io::TensorType::Q4_K>,
       &GemvK8Unpacked<ScalarKern<io::TensorType::Q6_K, BlockQ8_KA>, io::TensorType::Q6_K>},
      {&GemvX16Unpacked<ScalarKern<io::TensorType::Q5_0, BlockQ8_A>, io::TensorType::Q5_0>,
       &GemvX16Unpacked<ScalarKern<io::TensorType::Q8_0, BlockQ8_A>, io::TensorType::Q8_0>},
      false,
      false,
#elif EDGELLM_X86_256
      {&GemvX4Native<kX4Q4_0>, &GemvX4Native<kX4Q4_1>, &GemvX4Native<kX4Q8_0>, &GemvX4Native<kX4Q5_0>,
       &GemvX4Native<kX4Q5_1>},
      {&GemvK8Native<false>, &GemvK8Native<true>},
#if EDGELLM_X16_VNNI
      {&GemvX16Native<false>, &GemvX16Native<true>},
      true,
#else
      {&GemvX16Unpacked<LegacyKern<FmtQ5_0>, io::TensorType::Q5_0>,
       &GemvX16Unpacked<LegacyKern<FmtQ8_0>, io::TensorType::Q8_0>},
      false,
#endif
      true,
#else
      {&GemvX4Unpacked<LegacyKern<FmtQ4_0>, io::TensorType::Q4_0>,
       &GemvX4Unpacked<LegacyKern<FmtQ4_1>, io::TensorType::Q4_1>,
       &GemvX4Unpacked<LegacyKern<FmtQ8_0>, io::TensorType::Q8_0>,
       &GemvX4Unpacked<LegacyKern<FmtQ5_0>, io::TensorType::Q5_0>,
       &GemvX4Unpacked<LegacyKern<FmtQ5_1>, io::TensorType::Q5_1>},
      {&GemvK8Unpacked<Q45KKern<false>, io::TensorType::Q4_K>, &GemvK8Unpacked<Q6KKern, io::TensorType::Q6_K>},
      {&GemvX16Unpacked<LegacyKern<FmtQ5_0>, io::TensorType::Q5_0>,
       &GemvX16Unpacked<LegacyKern<FmtQ8_0>, io::TensorType::Q8_0>},
      false,
      false,
#endif
      &AttendRows,
      &GemmRows,
#if HWY_TARGET == HWY_AVX3
      &GemmQ8Vnni,
#else
      nullptr,
#endif
      &GeluErf,
  };
  return &table;
}

}  // namespace edgellm::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "ops/ops.h"

namespace edgellm::ops {
HWY_EXPORT(GetTable);

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Our name for a Highway target: EMU128 is the portable "scalar" fallback.
std::string isa_name(int64_t target) {
  if (target == HWY_EMU128 || target == HWY_SCALAR) return "scalar";
  return lower(hwy::TargetName(target));
}

std::vector<int64_t> usable_targets() { return hwy::SupportedAndGeneratedTargets(); }

std::mutex g_mu;
std::atomic<const KernelTable*> g_table{nullptr};

const KernelTable* table_for(int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  const KernelTable* t = HWY_DYNAMIC_DISPATCH(GetTable)();
  hwy::SetSupportedTargetsForTest(0);  // back to the real CPU
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return t;
}

bool force_locked(const std::string& name) {
  std::string want = lower(name);
  if (want == "avx512") want = "avx3";
  if (want == "emu128") want = "scalar";
  for (int64_t t : usable_targets())
    if (isa_name(t) == want) {
      g_table.store(table_for(t));
      return true;
    }
  return false;
}

const KernelTable* init_table() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (const KernelTable* t = g_table.load()) return t;
  const char* env = std::getenv("EDGELLM_ISA");
  if (env && *env && force_locked(env)) return g_table.load();
  // Unknown or unavailable EDGELLM_ISA: fall back to the best target rather than fail.
  g_table.store(HWY_DYNAMIC_DISPATCH(GetTable)());
  return g_table.load();
}
}  // namespace

const KernelTable& active_kernels() {
  const KernelTable* t = g_table.load(std::memory_order_acquire);
  return t ? *t : *init_table();
}

std::string active_isa() {
  const std::string n = lower(active_kernels().isa);
  return n == "emu128" || n == "scalar" ? "scalar" : n;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (int64_t t : usable_targets()) out.push_back(isa_name(t));
  return out;
}

bool force_isa(const std::string& name) {
  active_kernels();  // make sure EDGELLM_ISA was read first, so it cannot override this later
  std::lock_guard<std::mutex> lock(g_mu);
  return force_locked(name);
}

}  // namespace edgellm::ops
#endif  // HWY_ONCE
