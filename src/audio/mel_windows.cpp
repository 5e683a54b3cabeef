// Whisper's log-mel a window at a time (memory independent of the audio's length). Whisper
// normalises by the largest value over the whole recording, so a first pass over the source
// finds it (and the length); the second computes the frames each window needs, in order.
#include <algorithm>
#include <cmath>
#include <string>

#include "audio/audio.h"
#include "audio/mel.h"

namespace edgellm::audio {

MelWindows::MelWindows(SampleSource& src, int n_mels) : src_(src), framer_(n_mels), n_mels_(n_mels) {
  std::vector<float> buf(kChunk);
  float mx = -INFINITY;
  auto track = [&](int64_t, const float* logs) {
    for (int m = 0; m < n_mels_; ++m) mx = std::max(mx, logs[m]);
  };
  src_.rewind();
  for (size_t got; (got = src_.read(buf.data(), buf.size())) > 0;) {
    framer_.push(buf.data(), got, track);
    n_samples_ += static_cast<int64_t>(got);
  }
  if (n_samples_ < kFftSize / 2)
    throw AudioError("the audio is too short (" + std::to_string(n_samples_) + " samples at 16 kHz; at least " +
                     std::to_string(kFftSize / 2) + " are needed)");
  framer_.finish(track);
  n_frames_ = framer_.frames_done();
  max_log_ = mx;
  src_.rewind();
  framer_ = MelFramer(n_mels);
}

void MelWindows::window(int64_t seek, int64_t size, float* out, int64_t width) {
  if (seek < first_ || size < 0 || size > width || seek + size > n_frames_)
    throw AudioError("log-mel windows must move forward within the audio");
  // Frames before the window are no longer needed.
  const int64_t drop = std::min<int64_t>(seek - first_, static_cast<int64_t>(frames_.size() / n_mels_));
  frames_.erase(frames_.begin(), frames_.begin() + drop * n_mels_);
  first_ += drop;
  if (frames_.empty()) first_ = std::max(first_, seek);
  auto keep = [&](int64_t t, const float* logs) {
    if (t < seek) return;  // skipped over (a window without speech)
    if (frames_.empty()) first_ = t;
    frames_.insert(frames_.end(), logs, logs + n_mels_);
  };
  std::vector<float> buf(kChunk);
  while (framer_.frames_done() < seek + size) {
    const size_t got = src_.read(buf.data(), buf.size());
    if (got == 0) {
      framer_.finish(keep);
      break;
    }
    framer_.push(buf.data(), got, keep);
  }
  peak_frames_ = std::max(peak_frames_, frames_.size() / n_mels_);
  peak_samples_ = std::max(peak_samples_, framer_.buffered_samples());
  std::fill(out, out + static_cast<size_t>(n_mels_) * width, 0.0f);
  const float floor = max_log_ - 8.0f;
  for (int64_t t = 0; t < size; ++t) {
    const float* f = frames_.data() + (seek + t - first_) * n_mels_;
    for (int m = 0; m < n_mels_; ++m) out[static_cast<size_t>(m) * width + t] = (std::max(f[m], floor) + 4.0f) / 4.0f;
  }
}

}  // namespace edgellm::audio
