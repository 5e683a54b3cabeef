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

namespace {
AudioError too_short(size_t n) {
  return AudioError("the audio is too short (" + std::to_string(n) + " samples at 16 kHz; at least " +
                    std::to_string(kFftSize / 2) + " are needed)");
}
}  // namespace

struct MelFramer::Fft {
  Plan plan;
  float* in = fftwf_alloc_real(kFftSize);
  fftwf_complex* spec = fftwf_alloc_complex(kBins);
  ~Fft() {
    fftwf_free(in);
    fftwf_free(spec);
  }
};

MelFramer::MelFramer(int n_mels) : n_mels_(n_mels) {
  if (n_mels <= 0 || n_mels > 512) throw AudioError("bad mel bin count " + std::to_string(n_mels));
  window_.resize(kFftSize);
  for (int i = 0; i < kFftSize; ++i)
    window_[i] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * i / kFftSize));
  filters_ = mel_filters(n_mels);
  logs_.resize(n_mels);
  fft_ = std::make_unique<Fft>();
}
MelFramer::~MelFramer() = default;
MelFramer::MelFramer(MelFramer&&) noexcept = default;
MelFramer& MelFramer::operator=(MelFramer&&) noexcept = default;

void MelFramer::push(const float* x, size_t n, const Emit& emit) {
  buf_.insert(buf_.end(), x, x + n);
  hi_ += static_cast<int64_t>(n);
  // A frame covers samples [t * 160 - 200, t * 160 + 200): ready once they all arrived.
  while (next_ * kHop + kFftSize / 2 <= hi_) emit_frame(next_++, 0, false, emit);
  // Only samples of frames to come are kept.
  const int64_t need = std::max<int64_t>(0, next_ * kHop - kFftSize / 2);
  if (need - lo_ >= 65536) {
    buf_.erase(buf_.begin(), buf_.begin() + (need - lo_));
    lo_ = need;
  }
}

void MelFramer::finish(const Emit& emit) {
  // 160 zeros appended; the frames 1 + body / 160 of the STFT but the last (Whisper's).
  const int64_t body = hi_ + kHop;
  while (next_ < body / kHop) emit_frame(next_++, body, true, emit);
}

void MelFramer::emit_frame(int64_t t, int64_t body, bool ended, const Emit& emit) {
  // Reflect padding of 200 at both ends (NumPy's "reflect": the edge sample is not repeated).
  float* in = fft_->in;
  for (int i = 0; i < kFftSize; ++i) {
    const int64_t k = t * kHop - kFftSize / 2 + i;
    const int64_t j = k < 0 ? -k : (ended && k >= body) ? 2 * body - 2 - k : k;
    const float v = j < hi_ ? buf_[static_cast<size_t>(j - lo_)] : 0.0f;
    in[i] = v * window_[i];
  }
  fftwf_complex* spec = fft_->spec;
  fftwf_execute_dft_r2c(fft_->plan.plan, in, spec);
  float power[kBins];
  for (int b = 0; b < kBins; ++b) power[b] = spec[b][0] * spec[b][0] + spec[b][1] * spec[b][1];
  for (int m = 0; m < n_mels_; ++m) {
    const float* f = filters_.data() + static_cast<size_t>(m) * kBins;
    float s = 0;
    for (int b = 0; b < kBins; ++b) s += f[b] * power[b];
    logs_[m] = std::log10(std::max(s, 1e-10f));
  }
  emit(t, logs_.data());
}

LogMel log_mel(const float* samples, size_t n, int n_mels) {
  if (n < static_cast<size_t>(kFftSize / 2)) throw too_short(n);
  MelFramer framer(n_mels);
  LogMel out;
  out.n_mels = n_mels;
  out.n_frames = (static_cast<int64_t>(n) + kHop) / kHop;
  out.data.assign(static_cast<size_t>(n_mels) * out.n_frames, 0.0f);
  float max_log = -INFINITY;
  const auto keep = [&](int64_t t, const float* logs) {
    for (int m = 0; m < n_mels; ++m) {
      out.data[static_cast<size_t>(m) * out.n_frames + t] = logs[m];
      max_log = std::max(max_log, logs[m]);
    }
  };
  for (size_t i = 0; i < n; i += 16000) framer.push(samples + i, std::min<size_t>(16000, n - i), keep);
  framer.finish(keep);
  for (float& v : out.data) v = (std::max(v, max_log - 8.0f) + 4.0f) / 4.0f;
  return out;
}

}  // namespace edgellm::audio
