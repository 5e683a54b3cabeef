#include "audio/stream.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "audio/audio.h"

namespace edgellm::audio {

size_t VectorSource::read(float* out, size_t n) {
  const size_t k = std::min(n, n_ - pos_);
  std::copy_n(data_ + pos_, k, out);
  pos_ += k;
  return k;
}

namespace {
constexpr size_t kBlock = 16384;  // frames decoded at a time
}

struct FileSource::State {
  std::string path;
  SNDFILE* f = nullptr;
  SF_INFO info{};
  SRC_STATE* src = nullptr;  // null at 16 kHz
  std::vector<float> raw, in, out;
  size_t in_pos = 0, in_len = 0, out_pos = 0, out_len = 0;
  bool in_eof = false, done = false;

  void open() {
    info = SF_INFO{};
    f = sf_open(path.c_str(), SFM_READ, &info);
    if (!f) throw AudioError(path + ": not a readable audio file (WAV, FLAC, OGG or MP3): " + sf_strerror(nullptr));
    if (info.channels <= 0 || info.channels > 64 || info.samplerate <= 0 || info.samplerate > 768000)
      throw AudioError(path + ": unsupported audio layout (" + std::to_string(info.channels) + " channels at " +
                       std::to_string(info.samplerate) + " Hz)");
  }
  void close() {
    if (f) sf_close(f);
    f = nullptr;
  }
  // A block of mono samples at the file's rate into `dst`; 0 at the end.
  size_t decode_block(std::vector<float>& dst) {
    const int ch = info.channels;
    raw.resize(kBlock * ch);
    const sf_count_t got = sf_readf_float(f, raw.data(), kBlock);
    if (got <= 0) {
      if (sf_error(f) != SF_ERR_NO_ERROR) throw AudioError(path + ": cannot decode the audio (" + sf_strerror(f) + ")");
      return 0;
    }
    dst.resize(static_cast<size_t>(got));
    for (sf_count_t i = 0; i < got; ++i) {
      float s = 0;
      for (int c = 0; c < ch; ++c) s += raw[i * ch + c];
      dst[i] = s / ch;
    }
    return static_cast<size_t>(got);
  }
  void refill() {
    out_pos = out_len = 0;
    if (!src) {
      out_len = decode_block(out);
      if (out_len == 0) done = true;
      return;
    }
    if (in_pos == in_len && !in_eof) {
      in_len = decode_block(in);
      in_pos = 0;
      if (in_len == 0) in_eof = true;
    }
    const double ratio = static_cast<double>(kSampleRate) / info.samplerate;
    out.resize(static_cast<size_t>((in_len - in_pos) * ratio) + 4096);
    SRC_DATA d{};
    d.data_in = in.data() + in_pos;
    d.input_frames = static_cast<long>(in_len - in_pos);
    d.data_out = out.data();
    d.output_frames = static_cast<long>(out.size());
    d.src_ratio = ratio;
    d.end_of_input = in_eof ? 1 : 0;
    const int err = src_process(src, &d);
    if (err) throw AudioError(std::string("resampling failed: ") + src_strerror(err));
    in_pos += static_cast<size_t>(d.input_frames_used);
    out_len = static_cast<size_t>(d.output_frames_gen);
    if (in_eof && out_len == 0) done = true;
  }
};

FileSource::FileSource(const std::string& path) : s_(std::make_unique<State>()) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0)
    throw AudioError(path + ": the audio file is empty");
  s_->path = path;
  s_->open();
  if (s_->info.samplerate != kSampleRate) {
    int err = 0;
    s_->src = src_new(SRC_SINC_BEST_QUALITY, 1, &err);
    if (!s_->src) {
      s_->close();
      throw AudioError(std::string("resampling failed: ") + src_strerror(err));
    }
  }
}

FileSource::~FileSource() {
  s_->close();
  if (s_->src) src_delete(s_->src);
}

size_t FileSource::read(float* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (s_->out_pos < s_->out_len) {
      const size_t k = std::min(n - got, s_->out_len - s_->out_pos);
      std::copy_n(s_->out.data() + s_->out_pos, k, out + got);
      s_->out_pos += k, got += k;
      continue;
    }
    if (s_->done) break;
    s_->refill();
  }
  return got;
}

void FileSource::rewind() {
  s_->close();
  s_->open();  // reopened rather than sought: not every format libsndfile reads can seek
  if (s_->src) src_reset(s_->src);
  s_->in_pos = s_->in_len = s_->out_pos = s_->out_len = 0;
  s_->in_eof = s_->done = false;
}

}  // namespace edgellm::audio
