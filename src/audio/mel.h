#pragma once
// Whisper's log-mel spectrogram: 25 ms Hann windows (400 samples, periodic) every 10 ms (160),
// reflect-padded by 200 at both ends after 160 zeros are appended, power spectrum (FFTW),
// Slaney-normalised mel filters, log10 clamped at 1e-10, then at (max - 8), then (x + 4) / 4.
#include <cstddef>
#include <cstdint>
#include <vector>

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

}  // namespace edgellm::audio
