// Untrusted-input parsers of the Whisper path (issue #13): CTranslate2's model.bin reader and
// the audio decoder must turn every damaged input into an edgellm::Error, never a crash or an
// out-of-bounds read (each truncation is its own buffer, so ASan would see an over-read).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "asr/ct2_model.h"
#include "audio/audio.h"
#include "audio/mel.h"
#include "util/error.h"

namespace edgellm::asr {
namespace {

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  const uint16_t n = static_cast<uint16_t>(s.size() + 1);
  b.push_back(n & 0xff), b.push_back(n >> 8);
  b.insert(b.end(), s.begin(), s.end());
  b.push_back(0);
}

// A small valid model.bin: one [2, 3] float32 matrix, one int8 scalar, one alias.
std::vector<uint8_t> sample_model() {
  std::vector<uint8_t> b;
  put_u32(b, 6);
  put_str(b, "WhisperSpec");
  put_u32(b, 3);
  put_u32(b, 2);
  put_str(b, "encoder/w");
  b.push_back(2);
  put_u32(b, 2);
  put_u32(b, 3);
  b.push_back(0);  // float32
  put_u32(b, 24);
  for (int i = 0; i < 6; ++i) {
    float f = static_cast<float>(i) + 0.5f;
    uint8_t x[4];
    std::memcpy(x, &f, 4);
    b.insert(b.end(), x, x + 4);
  }
  put_str(b, "encoder/num_heads");
  b.push_back(0);
  b.push_back(1);  // int8
  put_u32(b, 1);
  b.push_back(6);
  put_u32(b, 1);
  put_str(b, "decoder/w");
  put_str(b, "encoder/w");
  return b;
}

TEST(Ct2Model, ParsesVariablesScalarsAndAliases) {
  const auto b = sample_model();
  const Ct2Model m = Ct2Model::parse(b.data(), b.size(), "t");
  EXPECT_EQ(m.spec, "WhisperSpec");
  EXPECT_EQ(m.at("encoder/w").dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(m.at("decoder/w").n_elements(), 6);  // through the alias
  EXPECT_EQ(m.scalar_int("encoder/num_heads"), 6);
  float last;
  std::memcpy(&last, m.at("encoder/w").bytes.data() + 20, 4);
  EXPECT_EQ(last, 5.5f);
  EXPECT_THROW(m.at("absent"), ModelFormatError);
}

TEST(Ct2Model, EveryTruncationIsAnError) {
  const auto b = sample_model();
  for (size_t n = 0; n < b.size(); ++n) {
    std::vector<uint8_t> cut(b.begin(), b.begin() + n);  // its own buffer: ASan sees any over-read
    EXPECT_THROW(Ct2Model::parse(cut.data(), cut.size(), "t"), ModelFormatError) << n;
  }
}

TEST(Ct2Model, CorruptBytesNeverCrash) {
  const auto good = sample_model();
  std::mt19937 rng(13);
  for (int trial = 0; trial < 2000; ++trial) {
    auto b = good;
    for (int k = 0; k < 3; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    try {
      Ct2Model::parse(b.data(), b.size(), "t");
    } catch (const ModelFormatError&) {
    }
  }
  auto wrong_type = good;
  wrong_type[4 + 2 + 12 + 4 + 4 + 2 + 10 + 1 + 8] = 9;  // the matrix's type id
  EXPECT_THROW(Ct2Model::parse(wrong_type.data(), wrong_type.size(), "t"), ModelFormatError);
}

TEST(Audio, GarbageBytesAreAudioErrors) {
  EXPECT_THROW(audio::decode_memory(nullptr, 0, "empty"), audio::AudioError);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> b(1 + rng() % 300);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (trial % 2 == 0 && b.size() > 12) std::memcpy(b.data(), "RIFF\x10\x00\x00\x00WAVE", 12);
    try {
      audio::load_16k_memory(b.data(), b.size(), "junk");
    } catch (const audio::AudioError&) {
    }
  }
}

TEST(Audio, LogMelOfSilenceAndShortInput) {
  std::vector<float> silence(16000, 0.0f);
  const auto mel = audio::log_mel(silence.data(), silence.size(), 80);
  EXPECT_EQ(mel.n_frames, 101);
  for (float v : mel.data) EXPECT_FLOAT_EQ(v, (-10.0f + 4.0f) / 4.0f);  // log10(1e-10), no range
  EXPECT_THROW(audio::log_mel(silence.data(), 100, 80), audio::AudioError);
  EXPECT_THROW(audio::log_mel(silence.data(), silence.size(), 0), audio::AudioError);
}

TEST(Audio, ResampleKeepsDuration) {
  std::vector<float> tone(44100);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = static_cast<float>(std::sin(2 * 3.14159265 * 440 * i / 44100.0));
  const auto out = audio::resample(tone, 44100, 16000);
  EXPECT_NEAR(static_cast<double>(out.size()), 16000.0, 2.0);
}

}  // namespace
}  // namespace edgellm::asr
