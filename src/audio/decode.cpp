#include <sndfile.h>
#include <samplerate.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "audio/audio.h"

namespace edgellm::audio {
namespace {

// libsndfile's virtual I/O over a byte buffer (bounds kept here, never by the caller).
struct MemoryFile {
  const uint8_t* data;
  sf_count_t size;
  sf_count_t pos = 0;
};

sf_count_t mem_length(void* u) { return static_cast<MemoryFile*>(u)->size; }
sf_count_t mem_seek(sf_count_t offset, int whence, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  sf_count_t p = whence == SEEK_SET ? offset : whence == SEEK_CUR ? m->pos + offset : m->size + offset;
  m->pos = std::clamp<sf_count_t>(p, 0, m->size);
  return m->pos;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemoryFile*>(u);
  const sf_count_t n = std::clamp<sf_count_t>(m->size - m->pos, 0, count);
  if (n > 0) std::memcpy(ptr, m->data + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t mem_tell(void* u) { return static_cast<MemoryFile*>(u)->pos; }

struct SfClose {
  void operator()(SNDFILE* f) const { sf_close(f); }
};

// Reads the whole stream, averaging the channels. A frame count libsndfile cannot know in
// advance (MP3, some OGG) is read until the decoder stops.
Decoded read_all(SNDFILE* raw, const SF_INFO& info, const std::string& label) {
  std::unique_ptr<SNDFILE, SfClose> f(raw);
  if (info.channels <= 0 || info.channels > 64 || info.samplerate <= 0 || info.samplerate > 768000)
    throw AudioError(label + ": unsupported audio layout (" + std::to_string(info.channels) + " channels at " +
                     std::to_string(info.samplerate) + " Hz)");
  Decoded d;
  d.sample_rate = info.samplerate;
  const int ch = info.channels;
  std::vector<float> buf(static_cast<size_t>(4096) * ch);
  for (;;) {
    const sf_count_t got = sf_readf_float(f.get(), buf.data(), 4096);
    if (got <= 0) break;
    for (sf_count_t i = 0; i < got; ++i) {
      float s = 0;
      for (int c = 0; c < ch; ++c) s += buf[i * ch + c];
      d.samples.push_back(s / ch);
    }
  }
  if (sf_error(f.get()) != SF_ERR_NO_ERROR)
    throw AudioError(label + ": cannot decode the audio (" + sf_strerror(f.get()) + ")");
  return d;
}

}  // namespace

Decoded decode_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) == 0)
    throw AudioError(path + ": the audio file is empty");
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) throw AudioError(path + ": not a readable audio file (WAV, FLAC, OGG or MP3): " + sf_strerror(nullptr));
  return read_all(f, info, path);
}

Decoded decode_memory(const uint8_t* data, size_t size, const std::string& label) {
  if (size == 0) throw AudioError(label + ": the audio file is empty");
  MemoryFile m{data, static_cast<sf_count_t>(size)};
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SF_INFO info{};
  SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &m);
  if (!f) throw AudioError(label + ": not a readable audio file (WAV, FLAC, OGG or MP3): " + sf_strerror(nullptr));
  return read_all(f, info, label);
}

std::vector<float> resample(const std::vector<float>& in, int rate_in, int rate_out) {
  if (rate_in == rate_out || in.empty()) return in;
  const double ratio = static_cast<double>(rate_out) / rate_in;
  std::vector<float> out(static_cast<size_t>(in.size() * ratio) + 16);
  SRC_DATA d{};
  d.data_in = in.data();
  d.input_frames = static_cast<long>(in.size());
  d.data_out = out.data();
  d.output_frames = static_cast<long>(out.size());
  d.src_ratio = ratio;
  const int err = src_simple(&d, SRC_SINC_BEST_QUALITY, 1);
  if (err) throw AudioError(std::string("resampling failed: ") + src_strerror(err));
  out.resize(static_cast<size_t>(d.output_frames_gen));
  return out;
}

namespace {
std::vector<float> to_16k(Decoded d, const std::string& label) {
  if (d.samples.empty()) throw AudioError(label + ": the audio has no samples");
  return resample(d.samples, d.sample_rate, kSampleRate);
}
}  // namespace

std::vector<float> load_16k(const std::string& path) { return to_16k(decode_file(path), path); }

std::vector<float> load_16k_memory(const uint8_t* data, size_t size, const std::string& label) {
  return to_16k(decode_memory(data, size, label), label);
}

}  // namespace edgellm::audio
