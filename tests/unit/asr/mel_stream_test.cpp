// Streaming audio for long recordings (issue #13): the log-mel window by window equals the
// whole-file log-mel bit for bit, holds a bounded number of frames and samples however long
// the audio, and a file decoded and resampled block by block equals the whole-file decode.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "audio/mel.h"
#include "audio/stream.h"

namespace edgellm::audio {
namespace {

std::vector<float> test_signal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / kSampleRate) * (i / 8000 % 3 == 0) + noise(rng);
  return x;
}

// A tone generated as it is read: hours of audio without holding them.
class ToneSource : public SampleSource {
 public:
  explicit ToneSource(int64_t n) : n_(n) {}
  size_t read(float* out, size_t n) override {
    size_t k = 0;
    for (; k < n && pos_ < n_; ++k, ++pos_) out[k] = 0.1f * std::sin(2 * M_PI * 300.0 * (pos_ % 16000) / kSampleRate);
    return k;
  }
  void rewind() override { pos_ = 0; }

 private:
  int64_t n_, pos_ = 0;
};

TEST(MelWindows, EqualTheWholeLogMel) {
  const std::vector<float> x = test_signal(16000 * 70 + 123, 7);
  const LogMel whole = log_mel(x.data(), x.size(), 80);
  VectorSource src(x.data(), x.size());
  MelWindows mw(src, 80);
  ASSERT_EQ(mw.n_frames(), whole.n_frames);
  ASSERT_EQ(mw.n_samples(), static_cast<int64_t>(x.size()));
  const int64_t W = 3000, content = whole.n_frames - 1;
  std::vector<float> win(80 * W);
  // Forward moves as transcription makes them: a whole window, back to a timestamp, a skip.
  for (int64_t seek : {int64_t{0}, int64_t{2950}, int64_t{4100}, int64_t{6500}}) {
    const int64_t size = std::min(W, content - seek);
    mw.window(seek, size, win.data(), W);
    for (int m = 0; m < 80; ++m)
      for (int64_t t = 0; t < W; ++t) {
        const float want = t < size ? whole.data[m * whole.n_frames + seek + t] : 0.0f;
        ASSERT_EQ(win[m * W + t], want) << "seek " << seek << " mel " << m << " frame " << t;
      }
  }
  EXPECT_THROW(mw.window(10, 100, win.data(), W), AudioError);  // never backwards
}

TEST(MelWindows, MemoryDoesNotGrowWithLength) {
  // 2 minutes here, 2 hours with EDGELLM_FULL_TESTS=1: the same bounds.
  const char* full = std::getenv("EDGELLM_FULL_TESTS");
  const int64_t seconds = full && std::string(full) == "1" ? 7200 : 120;
  ToneSource src(seconds * kSampleRate);
  MelWindows mw(src, 80);
  EXPECT_EQ(mw.n_frames(), seconds * 100 + 1);
  const int64_t W = 3000, content = mw.n_frames() - 1;
  std::vector<float> win(80 * W);
  int64_t windows = 0;
  for (int64_t seek = 0; seek < content; seek += 2900, ++windows) mw.window(seek, std::min(W, content - seek), win.data(), W);
  EXPECT_EQ(windows, (content + 2899) / 2900);
  // One window of frames and a read block ahead; samples: a block and the frames' overlap.
  EXPECT_LE(mw.peak_frames(), static_cast<size_t>(W + 200));
  EXPECT_LE(mw.peak_samples(), static_cast<size_t>(65536 + 16000 + 400));
}

std::string write_wav(const std::filesystem::path& path, const std::vector<float>& x, int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  EXPECT_NE(f, nullptr);
  std::vector<float> stereo;
  for (float v : x) stereo.push_back(v), stereo.push_back(v * 0.5f);
  sf_writef_float(f, stereo.data(), static_cast<sf_count_t>(x.size()));
  sf_close(f);
  return path.string();
}

std::vector<float> read_all(SampleSource& s) {
  std::vector<float> out, buf(1000);
  for (size_t got; (got = s.read(buf.data(), buf.size())) > 0;) out.insert(out.end(), buf.begin(), buf.begin() + got);
  return out;
}

TEST(FileSource, EqualsTheWholeFileDecode) {
  const auto dir = std::filesystem::temp_directory_path() / ("edgellm_stream_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (int rate : {16000, 44100, 8000}) {
    const std::string path = write_wav(dir / ("x" + std::to_string(rate) + ".wav"), test_signal(rate * 3 + 77, 3), rate);
    const std::vector<float> whole = load_16k(path);
    FileSource src(path);
    const std::vector<float> a = read_all(src);
    src.rewind();
    const std::vector<float> b = read_all(src);
    ASSERT_EQ(a, b) << rate;
    ASSERT_NEAR(static_cast<double>(a.size()), static_cast<double>(whole.size()), 2.0) << rate;
    double diff = 0;
    for (size_t i = 0; i < std::min(a.size(), whole.size()); ++i) diff = std::max(diff, std::fabs(double(a[i]) - whole[i]));
    EXPECT_LT(diff, rate == 16000 ? 1e-9 : 1e-4) << rate;
  }
  std::filesystem::remove_all(dir);
}

TEST(FileSource, BadFilesAreAudioErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("edgellm_stream_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto empty = dir / "empty.wav";
  std::FILE* f = std::fopen(empty.c_str(), "wb");
  std::fclose(f);
  EXPECT_THROW(FileSource{empty.string()}, AudioError);
  const auto junk = dir / "junk.wav";
  f = std::fopen(junk.c_str(), "wb");
  std::fputs("RIFF\x01\x02 not audio at all", f);
  std::fclose(f);
  EXPECT_THROW(FileSource{junk.string()}, AudioError);
  EXPECT_THROW(FileSource{(dir / "missing.wav").string()}, AudioError);
  // Fewer samples than one frame needs: the log-mel refuses them clearly.
  std::vector<float> few(100, 0.0f);
  VectorSource src(few.data(), few.size());
  EXPECT_THROW(MelWindows(src, 80), AudioError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm::audio
