#pragma once
// Audio input for speech recognition: decoding (WAV, FLAC, OGG/Vorbis/Opus, MP3 through
// libsndfile), down-mixing to mono and resampling to 16 kHz (libsamplerate). Bad input (empty,
// not audio, truncated, no samples) is an AudioError naming the file and the problem.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/error.h"

namespace edgellm::audio {

class AudioError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

constexpr int kSampleRate = 16000;  // Whisper's

struct Decoded {
  std::vector<float> samples;  // mono, in [-1, 1]
  int sample_rate = 0;
};

// The file or bytes decoded to mono at their own rate. `label` names the input in errors.
Decoded decode_file(const std::string& path);
Decoded decode_memory(const uint8_t* data, size_t size, const std::string& label);

// Mono samples from rate_in to rate_out (libsamplerate's best sinc converter); a copy when the
// rates are equal.
std::vector<float> resample(const std::vector<float>& in, int rate_in, int rate_out);

// decode + resample to 16 kHz; AudioError when the result has no samples.
std::vector<float> load_16k(const std::string& path);
std::vector<float> load_16k_memory(const uint8_t* data, size_t size, const std::string& label);

}  // namespace edgellm::audio
