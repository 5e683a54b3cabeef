#include "audio/mel.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include "audio/audio.h"

namespace edgellm::audio {
namespace {

constexpr int kBins = kFftSize / 2 + 1;

// FFTW's planner is not thread-safe; executing a plan on new arrays is (fftwf_execute_dft_r2c).
std::mutex plan_mutex;

struct Plan {
  fftwf_plan plan = nullptr;
  float* in = nullptr;
  fftwf_complex* out = nullptr;
  Plan() {
    std::lock_guard<std::mutex> lock(plan_mutex);
    in = fftwf_alloc_real(kFftSize);
    out = fftwf_alloc_complex(kBins);
    plan = fftwf_plan_dft_r2c_1d(kFftSize, in, out, FFTW_ESTIMATE);
  }
  ~Plan() {
    std::lock_guard<std::mutex> lock(plan_mutex);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
  }
};

double hz_to_mel(double f) {  // Slaney: linear below 1 kHz, logarithmic above
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return f < min_log_hz ? f / f_sp : min_log_mel + std::log(f / min_log_hz) / logstep;
}

double mel_to_hz(double m) {
  const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return m < min_log_mel ? f_sp * m : min_log_hz * std::exp(logstep * (m - min_log_mel));
}

}  // namespace

std::vector<float> mel_filters(int n_mels) {
  const double max_mel = hz_to_mel(kSampleRate / 2.0);
  std::vector<double> freqs(n_mels + 2);
  for (int i = 0; i < n_mels + 2; ++i) freqs[i] = mel_to_hz(max_mel * i / (n_mels + 1));
  std::vector<float> w(static_cast<size_t>(n_mels) * kBins);
  for (int m = 0; m < n_mels; ++m) {
    const double enorm = 2.0 / (freqs[m + 2] - freqs[m]);
    for (int b = 0; b < kBins; ++b) {
      const double f = static_cast<double>(b) * kSampleRate / kFftSize;
      const double lower = (f - freqs[m]) / (freqs[m + 1] - freqs[m]);
      const double upper = (freqs[m + 2] - f) / (freqs[m + 2] - freqs[m + 1]);
      w[static_cast<size_t>(m) * kBins + b] = static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
    }
  }
  return w;
}

LogMel log_mel(const float* samples, size_t n, int n_mels) {
  if (n < static_cast<size_t>(kFftSize / 2))
    throw AudioError("the audio is too short (" + std::to_string(n) + " samples at 16 kHz; at least " +
                     std::to_string(kFftSize / 2) + " are needed)");
  if (n_mels <= 0 || n_mels > 512) throw AudioError("bad mel bin count " + std::to_string(n_mels));
  // 160 zeros appended, then reflect padding of 200 each side (NumPy's "reflect": the edge
  // sample is not repeated).
  const int64_t pad = kFftSize / 2;
  const int64_t body = static_cast<int64_t>(n) + kHop;
  std::vector<float> x(body + 2 * pad, 0.0f);
  std::copy(samples, samples + n, x.begin() + pad);
  auto at = [&](int64_t i) { return i < static_cast<int64_t>(n) ? samples[i] : 0.0f; };
  for (int64_t i = 0; i < pad; ++i) {
    x[pad - 1 - i] = at(i + 1);
    x[pad + body + i] = at(body - 2 - i);
  }
  // STFT frames 1 + body / hop, the last dropped (Whisper's convention).
  const int64_t n_frames = body / kHop;
  std::vector<float> window(kFftSize);
  for (int i = 0; i < kFftSize; ++i)
    window[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * i / kFftSize));
  const std::vector<float> filters = mel_filters(n_mels);

  LogMel out;
  out.n_mels = n_mels;
  out.n_frames = n_frames;
  out.data.assign(static_cast<size_t>(n_mels) * n_frames, 0.0f);
  Plan plan;
  std::vector<float> frame(kFftSize), power(kBins);
  fftwf_complex* spec = fftwf_alloc_complex(kBins);
  std::unique_ptr<fftwf_complex, void (*)(void*)> spec_owner(spec, fftwf_free);
  float* in = fftwf_alloc_real(kFftSize);
  std::unique_ptr<float, void (*)(void*)> in_owner(in, fftwf_free);
  float max_log = -INFINITY;
  for (int64_t t = 0; t < n_frames; ++t) {
    for (int i = 0; i < kFftSize; ++i) in[i] = x[t * kHop + i] * window[i];
    fftwf_execute_dft_r2c(plan.plan, in, spec);
    for (int b = 0; b < kBins; ++b) power[b] = spec[b][0] * spec[b][0] + spec[b][1] * spec[b][1];
    for (int m = 0; m < n_mels; ++m) {
      const float* f = filters.data() + static_cast<size_t>(m) * kBins;
      float s = 0;
      for (int b = 0; b < kBins; ++b) s += f[b] * power[b];
      const float l = std::log10(std::max(s, 1e-10f));
      out.data[static_cast<size_t>(m) * n_frames + t] = l;
      max_log = std::max(max_log, l);
    }
  }
  for (float& v : out.data) v = (std::max(v, max_log - 8.0f) + 4.0f) / 4.0f;
  return out;
}

}  // namespace edgellm::audio
