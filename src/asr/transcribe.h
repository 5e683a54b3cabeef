#pragma once
// Speech -> text with a WhisperModel: the audio in 30 s windows (seeking a whole window at a
// time, as the reference does without timestamps), language detection on the first window,
// greedy decoding with Whisper's prompt tokens and token suppression.
#include <cstdint>
#include <string>
#include <vector>

#include "asr/whisper.h"

namespace edgellm::asr {

struct TranscribeOptions {
  std::string language = "auto";  // a language code ("en", "zh"...) or "auto"
  std::string task = "transcribe";  // or "translate" (multilingual models)
};

struct Segment {
  double start = 0, end = 0;  // seconds
  std::string text;
  std::vector<int32_t> tokens;
};

struct Transcript {
  std::string language;
  float language_probability = 1.0f;
  double duration = 0;  // seconds of audio
  std::vector<Segment> segments;
  std::string text;  // the segments' text joined, trimmed
};

// The token of a language code, or -1 (English-only models know none but "en").
int32_t language_token(const WhisperModel& m, const std::string& code);

// Language of an encoded window: the most probable language token after <|startoftranscript|>
// (probability among the language tokens).
std::pair<std::string, float> detect_language(const WhisperModel& m, const std::vector<float>& encoded,
                                              ops::ThreadPool& pool);

// Greedy tokens for one encoded window after `prompt` (without the prompt, up to <|endoftext|>).
std::vector<int32_t> greedy_decode(const WhisperModel& m, const std::vector<float>& encoded,
                                   const std::vector<int32_t>& prompt, ops::ThreadPool& pool);

// 16 kHz mono samples -> transcript. InvalidArgument for an unknown language or task.
Transcript transcribe(const WhisperModel& m, const std::vector<float>& samples, const TranscribeOptions& opt,
                      ops::ThreadPool& pool);

// Output formats of `edgellm transcribe` and the server: "text", "json", "srt", "vtt".
std::string format_transcript(const Transcript& t, const std::string& format);

}  // namespace edgellm::asr
