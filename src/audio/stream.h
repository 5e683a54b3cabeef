#pragma once
// Audio as a stream of 16 kHz mono samples, so long recordings are never held whole: a source
// over samples already in memory, and one that decodes a file (libsndfile) and resamples it
// (libsamplerate) a block at a time. Both can start over (the log-mel needs two passes).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace edgellm::audio {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Up to n samples into out; 0 at the end. AudioError when the input turns out damaged.
  virtual size_t read(float* out, size_t n) = 0;
  virtual void rewind() = 0;
};

// Samples owned by the caller (kept alive while the source is used).
class VectorSource : public SampleSource {
 public:
  VectorSource(const float* data, size_t n) : data_(data), n_(n) {}
  size_t read(float* out, size_t n) override;
  void rewind() override { pos_ = 0; }

 private:
  const float* data_;
  size_t n_, pos_ = 0;
};

// A file decoded block by block, down-mixed to mono and resampled to 16 kHz. Opening checks
// the file (AudioError as decode_file); the memory used does not depend on the file's length.
class FileSource : public SampleSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  size_t read(float* out, size_t n) override;
  void rewind() override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace edgellm::audio
