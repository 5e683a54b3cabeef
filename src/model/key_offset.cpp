#include "model/key_offset.h"

#include <algorithm>
#include <cmath>
#include <complex>

namespace edgellm::model {

std::vector<float> key_offsets(const ModelConfig& c, const std::vector<std::vector<float>>& bk) {
  const int32_t kvd = c.kv_dim(), hd = c.head_dim, half = c.n_rot / 2;
  if (c.attn_softcap > 0 || c.qk_norm || static_cast<int32_t>(bk.size()) != c.n_layer) return {};
  for (const auto& b : bk)
    if (static_cast<int32_t>(b.size()) != kvd) return {};
  std::vector<float> out(static_cast<size_t>(c.n_layer) * kvd);
  const double H = kOffsetPositions;
  for (int32_t il = 0; il < c.n_layer; ++il) {
    const float* b = bk[il].data();
    float* o = &out[static_cast<size_t>(il) * kvd];
    std::copy(b, b + kvd, o);  // channels past n_rot are not rotated: the bias itself
    // The same frequencies as the forward pass (ops::rope_cos_sin) at the model's own context.
    const float* ff = c.rope_factors_for(c.rope_ctx_orig > 0 ? c.rope_ctx_orig : kOffsetPositions);
    for (int32_t i = 0; i < half; ++i) {
      double theta = c.rope_freq_scale * std::pow(static_cast<double>(c.rope_base_for(il)), -2.0 * i / c.n_rot);
      if (ff) theta /= ff[i];
      // mean over p < H of e^{i p theta} = e^{i (H-1) theta / 2} sin(H theta / 2) / (H sin(theta / 2)).
      const double s = std::sin(theta / 2);
      const double mag = std::fabs(s) < 1e-12 ? 1.0 : std::sin(H * theta / 2) / (H * s);
      const std::complex<double> m = std::polar(mag * c.rope_attn_factor, (H - 1) * theta / 2);
      for (int32_t h = 0; h < c.n_head_kv; ++h) {
        const int32_t a = h * hd + (c.rope_neox ? i : 2 * i), bb = h * hd + (c.rope_neox ? i + half : 2 * i + 1);
        const std::complex<double> r = std::complex<double>(b[a], b[bb]) * m;
        o[a] = static_cast<float>(r.real());
        o[bb] = static_cast<float>(r.imag());
      }
    }
  }
  return out;
}

}  // namespace edgellm::model
