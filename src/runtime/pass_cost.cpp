#include "runtime/pass_cost.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "io/tensor_type.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace edgellm::runtime {

double PassCosts::pass(int32_t n) const {
  if (n <= 1 || verify.empty()) return 1.0;
  const size_t last = verify.size();
  if (static_cast<size_t>(n) <= last) return verify[static_cast<size_t>(n) - 1];
  const double step = last >= 2 ? std::max(0.f, verify[last - 1] - verify[last - 2]) : 0.0;
  return verify[last - 1] + step * static_cast<double>(static_cast<size_t>(n) - last);
}

PassCosts measure_pass_costs(const Engine& engine, int32_t n_max, int32_t rounds, int32_t depth) {
  if (n_max < 1 || n_max > 64) throw InvalidArgument("pass costs: n_max must be between 1 and 64");
  if (rounds < 1) throw InvalidArgument("pass costs: rounds must be >= 1");
  if (depth < 1) throw InvalidArgument("pass costs: depth must be >= 1");
  const int32_t n_vocab = engine.config().n_vocab;
  Session s(engine, depth + n_max + 1);
  // Any ids do: a pass's cost does not depend on which tokens it runs.
  std::vector<int32_t> ctx(static_cast<size_t>(depth));
  for (int32_t i = 0; i < depth; ++i) ctx[static_cast<size_t>(i)] = static_cast<int32_t>((7919LL * i + 13) % n_vocab);
  std::vector<float> logits(static_cast<size_t>(n_max) * static_cast<size_t>(n_vocab));
  s.load_prompt(ctx, logits.data());
  auto timed = [&](int32_t n) {
    std::vector<int32_t> toks(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) toks[static_cast<size_t>(i)] = ctx[static_cast<size_t>(i)];
    const auto t0 = std::chrono::steady_clock::now();
    s.extend(toks, logits.data());
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.truncate(depth);
    return t;
  };
  timed(1);  // warm-up: scratch buffers, pages
  std::vector<std::vector<double>> ratios(static_cast<size_t>(n_max));
  for (int32_t r = 0; r < rounds; ++r) {
    double before = timed(1);
    for (int32_t n = 2; n <= n_max; ++n) {
      const double t = timed(n), after = timed(1);
      ratios[static_cast<size_t>(n) - 1].push_back(t / (0.5 * (before + after)));
      before = after;
    }
  }
  PassCosts c;
  c.verify.assign(static_cast<size_t>(n_max), 1.f);
  for (int32_t n = 2; n <= n_max; ++n) {
    auto& v = ratios[static_cast<size_t>(n) - 1];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    // A pass of more tokens never costs less than a shorter one (up to timing noise).
    c.verify[static_cast<size_t>(n) - 1] =
        std::max(c.verify[static_cast<size_t>(n) - 2], static_cast<float>(v[v.size() / 2]));
  }
  return c;
}

float guess_cost_from_bytes(const Engine& target, const Engine& draft, int32_t head_rows) {
  const auto& tw = target.model().weights();
  const auto& dw = draft.model().weights();
  double bytes = static_cast<double>(dw.matrix_bytes);
  const auto& head = dw.output;
  if (head_rows > 0 && head_rows < head.n_out) {
    const double row = static_cast<double>(io::row_bytes(head.type, head.n_in));
    bytes -= row * static_cast<double>(head.n_out - head_rows);
  }
  return tw.matrix_bytes > 0 ? static_cast<float>(bytes / static_cast<double>(tw.matrix_bytes)) : 0.f;
}

}  // namespace edgellm::runtime
