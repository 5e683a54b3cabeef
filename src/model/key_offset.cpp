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

KeyCalibration calibrate_keys(const ModelConfig& c, const std::vector<std::vector<float>>& keys, int32_t n_pos) {
  const int32_t kvd = c.kv_dim(), hd = c.head_dim, half = c.n_rot / 2;
  KeyCalibration out;
  if (n_pos < 1 || static_cast<int32_t>(keys.size()) != c.n_layer) return out;
  std::vector<std::vector<float>> mean(static_cast<size_t>(c.n_layer), std::vector<float>(static_cast<size_t>(kvd)));
  std::vector<double> sq(static_cast<size_t>(c.n_layer) * kvd);  // E[k^2] per channel
  for (int32_t il = 0; il < c.n_layer; ++il) {
    if (keys[il].size() != static_cast<size_t>(n_pos) * kvd) return out;
    for (int32_t i = 0; i < kvd; ++i) {
      double s = 0, s2 = 0;
      for (int32_t p = 0; p < n_pos; ++p) {
        const double x = keys[il][static_cast<size_t>(p) * kvd + i];
        s += x, s2 += x * x;
      }
      mean[il][i] = static_cast<float>(s / n_pos);
      sq[static_cast<size_t>(il) * kvd + i] = s2 / n_pos;
    }
  }
  out.offset = key_offsets(c, mean);
  if (out.offset.empty()) return out;
  // Mean square of a stored channel around the offset. RoPE turns a pair (a, b) by the position,
  // so at long range both channels see the pair's average; over positions and keys
  // E|R k - c|^2 = E|k|^2 - |c|^2 per pair (c is the mean of R k), shared by its two channels.
  out.scale.assign(out.offset.size(), 1.0f);
  std::vector<float> rms(static_cast<size_t>(hd));
  for (int32_t il = 0; il < c.n_layer; ++il)
    for (int32_t h = 0; h < c.n_head_kv; ++h) {
      const size_t base = static_cast<size_t>(il) * kvd + static_cast<size_t>(h) * hd;
      auto var = [&](int32_t i) { return sq[base + i] - static_cast<double>(out.offset[base + i]) * out.offset[base + i]; };
      for (int32_t i = 0; i < hd; ++i) rms[i] = static_cast<float>(std::sqrt(std::max(0.0, var(i))));
      for (int32_t i = 0; i < half; ++i) {
        const int32_t a = c.rope_neox ? i : 2 * i, b = c.rope_neox ? i + half : 2 * i + 1;
        const float pair = static_cast<float>(std::sqrt(std::max(0.0, (var(a) + var(b)) / 2)));
        rms[a] = rms[b] = pair;
      }
      std::vector<float> sorted(rms);
      std::nth_element(sorted.begin(), sorted.begin() + hd / 2, sorted.end());
      const float limit = kScaleHeadroom * sorted[static_cast<size_t>(hd / 2)];
      if (!(limit > 0)) continue;
      for (int32_t i = 0; i < hd; ++i) out.scale[base + i] = std::max(1.0f, rms[i] / limit);
    }
  return out;
}

}  // namespace edgellm::model
