#pragma once
// Whisper's log-mel spectrogram: 25 ms Hann windows (400 samples, periodic) every 10 ms (160),
// reflect-padded by 200 at both ends after 160 zeros are appended, power spectrum (FFTW),
// Slaney-normalised mel filters, log10 clamped at 1e-10, then at (max - 8), then (x + 4) / 4.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "audio/stream.h"

namespace edgellm::audio {

constexpr int kFftSize = 400;
constexpr int kHop = 160;

struct LogMel {
  int n_mels = 0;
  int64_t n_frames = 0;     // samples / 160 + 1
  std::vector<float> data;  // [n_mels][n_frames]
};

// Mel filter bank [n_mels][kFftSize / 2 + 1] (Slaney scale and area normalisation).
std::vector<float> mel_filters(int n_mels);

// The log-mel of 16 kHz mono samples. Throws AudioError for fewer than kFftSize / 2 samples.
LogMel log_mel(const float* samples, size_t n, int n_mels);

// The frames of the log-mel before normalisation (log10 of the mel power), computed as the
// samples arrive: each frame once the samples it covers are known, the last ones (over the
// appended zeros and the reflection) at finish(). Keeps only the samples still needed.
class MelFramer {
 public:
  using Emit = std::function<void(int64_t frame, const float* log10_mel)>;
  explicit MelFramer(int n_mels);
  ~MelFramer();
  MelFramer(MelFramer&&) noexcept;
  MelFramer& operator=(MelFramer&&) noexcept;
  void push(const float* x, size_t n, const Emit& emit);
  void finish(const Emit& emit);
  int64_t frames_done() const { return next_; }
  size_t buffered_samples() const { return buf_.size(); }

 private:
  struct Fft;
  int n_mels_;
  std::vector<float> window_, filters_, buf_, frame_, logs_;
  std::unique_ptr<Fft> fft_;
  int64_t lo_ = 0, hi_ = 0, next_ = 0;  // buf_ holds samples [lo_, hi_); next frame to emit
  void emit_frame(int64_t t, int64_t body, bool ended, const Emit& emit);
};

// Normalised 30 s windows of the log-mel of a source, read twice (once for the maximum and the
// length, then as the windows move forward) and never held whole.
class MelWindows {
 public:
  // AudioError for fewer than kFftSize / 2 samples (or from the source).
  MelWindows(SampleSource& src, int n_mels);
  int64_t n_frames() const { return n_frames_; }   // as LogMel::n_frames
  int64_t n_samples() const { return n_samples_; }
  // Frames [seek, seek + size) into out [n_mels][width], zero-padded; seek never moves back.
  void window(int64_t seek, int64_t size, float* out, int64_t width);
  // The most frames and samples held at once (what bounds the memory).
  size_t peak_frames() const { return peak_frames_; }
  size_t peak_samples() const { return peak_samples_; }

 private:
  static constexpr size_t kChunk = 16000;
  SampleSource& src_;
  MelFramer framer_;
  int n_mels_;
  int64_t n_samples_ = 0, n_frames_ = 0, first_ = 0;
  float max_log_ = 0;
  std::vector<float> frames_;  // frame-major, frames [first_, first_ + size / n_mels)
  size_t peak_frames_ = 0, peak_samples_ = 0;
};

}  // namespace edgellm::audio
