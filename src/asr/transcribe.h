#pragma once
// Speech -> text with a WhisperModel, as faster-whisper's transcribe does: the audio in 30 s
// windows, language detection on the first window, the previous windows' text as a prompt,
// token generation (decoding.h) with temperature fallback and the no-speech check, and, with
// timestamps, segments cut at timestamp tokens and seeking to the last complete segment.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "asr/whisper.h"
#include "audio/stream.h"

namespace edgellm::asr {

struct TranscribeOptions {
  std::string language = "auto";  // a language code ("en", "zh"...) or "auto"
  std::string task = "transcribe";  // or "translate" (multilingual models)
  // Segment timestamps (<|0.00|> tokens, segments as the model cuts them, seeking to the last
  // one); false: <|notimestamps|>, one segment per 30 s window.
  bool timestamps = false;
  std::string initial_prompt;  // text before the first window (OpenAI's `prompt`)
  bool condition_on_previous_text = true;  // each window's prompt: the text so far
  // faster-whisper's defaults: decode at each temperature in turn until the result passes the
  // thresholds (nullopt: no such check).
  std::vector<float> temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
  std::optional<float> compression_ratio_threshold = 2.4f;  // gzip ratio above: too repetitive
  std::optional<float> log_prob_threshold = -1.0f;          // average log-prob below: failed
  std::optional<float> no_speech_threshold = 0.6f;  // P(no speech) above and log-prob low: skip
  float prompt_reset_on_temperature = 0.5f;  // a window decoded hotter drops the prompt
  int beam_size = 1;  // at temperature 0
  float patience = 1.0f, length_penalty = 1.0f;
  int best_of = 5;  // samples at a temperature > 0
  uint64_t seed = 0;  // of the sampling at temperatures > 0
};

struct Segment {
  double start = 0, end = 0;  // seconds
  std::string text;
  std::vector<int32_t> tokens;  // with the timestamp tokens when timestamps are on
  int64_t seek = 0;              // first mel frame (10 ms) of the window it came from
  float temperature = 0, avg_logprob = 0, compression_ratio = 0, no_speech_prob = 0;
};

struct Transcript {
  std::string language;
  float language_probability = 1.0f;
  double duration = 0;  // seconds of audio
  std::vector<Segment> segments;
  std::string text;  // the segments' text joined, trimmed
  // Wall seconds spent in each stage (`edgellm transcribe --timing`): log-mel windows, encoder,
  // decoding (language detection, generation and fallbacks), and the decoder steps run.
  struct Timing {
    double mel = 0, encode = 0, decode = 0;
    int64_t steps = 0;
  } timing;
};

// The token of a language code, or -1 (English-only models know none but "en").
int32_t language_token(const WhisperModel& m, const std::string& code);

// Language of an encoded window: the most probable language token after <|startoftranscript|>
// (probability among the language tokens).
std::pair<std::string, float> detect_language(const WhisperModel& m, const std::vector<float>& encoded,
                                              ops::ThreadPool& pool);
std::pair<std::string, float> detect_language(const WhisperModel& m, const std::shared_ptr<const CrossKV>& cross,
                                              ops::ThreadPool& pool);

// Greedy tokens for one encoded window after `prompt` (without the prompt, up to <|endoftext|>;
// no timestamps unless the prompt asks for them).
std::vector<int32_t> greedy_decode(const WhisperModel& m, const std::vector<float>& encoded,
                                   const std::vector<int32_t>& prompt, ops::ThreadPool& pool);

// zlib's compression ratio of the text's bytes (faster-whisper's repetition measure).
double compression_ratio(const std::string& text);

// 16 kHz mono samples -> transcript. InvalidArgument for an unknown language, task or option.
Transcript transcribe(const WhisperModel& m, const std::vector<float>& samples, const TranscribeOptions& opt,
                      ops::ThreadPool& pool);
// The same from a stream of 16 kHz mono samples (audio::FileSource decodes a file as it goes):
// read twice (the log-mel's maximum, then window by window), memory independent of its length.
Transcript transcribe(const WhisperModel& m, audio::SampleSource& source, const TranscribeOptions& opt,
                      ops::ThreadPool& pool);

// Output formats of `edgellm transcribe` and the server: "text", "json", "srt", "vtt".
std::string format_transcript(const Transcript& t, const std::string& format);

}  // namespace edgellm::asr
