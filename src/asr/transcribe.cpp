#include "asr/transcribe.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "asr/decoding.h"
#include "audio/audio.h"
#include "audio/mel.h"
#include "util/error.h"

namespace edgellm::asr {
namespace {

int32_t special(const WhisperModel& m, const char* text) {
  const auto id = m.tokenizer().find_token(text);
  if (!id) throw ModelFormatError(std::string("the Whisper vocabulary has no ") + text);
  return *id;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

}  // namespace

int32_t language_token(const WhisperModel& m, const std::string& code) {
  const auto id = m.tokenizer().find_token("<|" + code + "|>");
  if (!id) return -1;
  const auto& langs = m.config().lang_ids;
  if (m.config().multilingual && std::find(langs.begin(), langs.end(), *id) == langs.end()) return -1;
  if (!m.config().multilingual && code != "en") return -1;
  return *id;
}

std::pair<std::string, float> detect_language(const WhisperModel& m, const std::vector<float>& encoded,
                                              ops::ThreadPool& pool) {
  if (!m.config().multilingual) return {"en", 1.0f};
  return detect_language(m, WhisperDecoder::cross_kv(m, encoded, pool), pool);
}

std::pair<std::string, float> detect_language(const WhisperModel& m, const std::shared_ptr<const CrossKV>& cross,
                                              ops::ThreadPool& pool) {
  if (!m.config().multilingual) return {"en", 1.0f};
  WhisperDecoder dec(m, cross, pool);
  const std::vector<float>& logits = dec.feed({special(m, "<|startoftranscript|>")});
  const auto& langs = m.config().lang_ids;
  if (langs.empty()) throw ModelFormatError("the Whisper model lists no language tokens");
  float mx = -INFINITY;
  int32_t best = langs[0];
  for (int32_t id : langs)
    if (logits[id] > mx) mx = logits[id], best = id;
  double sum = 0;
  for (int32_t id : langs) sum += std::exp(static_cast<double>(logits[id]) - mx);
  std::string code = m.tokenizer().token_text(best);
  code = code.substr(2, code.size() - 4);  // "<|en|>" -> "en"
  return {code, static_cast<float>(1.0 / sum)};
}

std::vector<int32_t> greedy_decode(const WhisperModel& m, const std::vector<float>& encoded,
                                   const std::vector<int32_t>& prompt, ops::ThreadPool& pool) {
  GenerateOptions o;
  o.timestamps = prompt.empty() || prompt.back() != special(m, "<|notimestamps|>");
  std::mt19937_64 rng(0);
  return generate(m, encoded, prompt, o, rng, pool).tokens;
}

double compression_ratio(const std::string& text) {
  if (text.empty()) return 0;
  uLongf n = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buf(n);
  if (compress2(buf.data(), &n, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK)
    throw Error("zlib could not compress the transcript");
  return static_cast<double>(text.size()) / static_cast<double>(n);
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

constexpr double kTimePrecision = 0.02;  // seconds per timestamp token
constexpr int kInputStride = 2;          // mel frames per timestamp token

struct Decoded {
  Generation g;
  float temperature = 0;
  double avg_logprob = 0, compression_ratio = 0;
};

std::string text_of(const WhisperModel& m, const WhisperTokens& tk, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> text;
  for (int32_t t : tokens)
    if (t < tk.eot) text.push_back(t);
  return m.tokenizer().decode(text, true);
}

// faster-whisper's generate_with_fallback: the temperatures in turn until a result is neither
// too repetitive nor too improbable (or is silence); else the best of those tried.
Decoded decode_with_fallback(const WhisperModel& m, const WhisperTokens& tk, const std::shared_ptr<const CrossKV>& enc,
                             const std::vector<int32_t>& prompt, const TranscribeOptions& opt,
                             std::mt19937_64& rng, ops::ThreadPool& pool) {
  GenerateOptions go;
  go.timestamps = opt.timestamps;
  go.beam_size = opt.beam_size, go.patience = opt.patience, go.length_penalty = opt.length_penalty;
  go.best_of = opt.best_of;
  std::vector<Decoded> all, below_cr;
  float temperature = 0;
  for (float t : opt.temperatures) {
    temperature = t;
    go.temperature = t;
    Decoded d;
    d.g = generate(m, enc, prompt, go, rng, pool);
    d.temperature = t;
    d.avg_logprob = d.g.avg_logprob();
    d.compression_ratio = compression_ratio(trim(text_of(m, tk, d.g.tokens)));
    bool fallback = false;
    if (opt.compression_ratio_threshold) {
      if (d.compression_ratio > *opt.compression_ratio_threshold) fallback = true;
      else below_cr.push_back(d);
    }
    if (opt.log_prob_threshold && d.avg_logprob < *opt.log_prob_threshold) fallback = true;
    if (opt.no_speech_threshold && d.g.no_speech_prob > *opt.no_speech_threshold && opt.log_prob_threshold &&
        d.avg_logprob < *opt.log_prob_threshold)
      fallback = false;  // silence: no point in a hotter decode
    all.push_back(std::move(d));
    if (!fallback) return all.back();
  }
  const std::vector<Decoded>& pool_of = below_cr.empty() ? all : below_cr;
  size_t best = 0;
  for (size_t i = 1; i < pool_of.size(); ++i)  // max(): the first of equal ones (NaN never wins)
    if (pool_of[i].avg_logprob > pool_of[best].avg_logprob) best = i;
  Decoded d = pool_of[best];
  d.temperature = temperature;  // the last one tried (it decides the prompt reset)
  return d;
}

struct Cut {
  double start, end;
  std::vector<int32_t> tokens;
};

// faster-whisper's _split_segments_by_timestamps: segments between consecutive timestamp pairs;
// the next window starts at the last closed segment, or after this one when the tokens end in a
// lone timestamp (no speech after it).
std::vector<Cut> split_by_timestamps(const WhisperTokens& tk, const std::vector<int32_t>& tokens, double offset,
                                     int64_t segment_size, int64_t& seek) {
  const int32_t tb = tk.timestamp_begin;
  std::vector<Cut> cuts;
  const size_t n = tokens.size();
  const bool single_ending = n >= 2 && tokens[n - 2] < tb && tokens[n - 1] >= tb;
  std::vector<size_t> slices;
  for (size_t i = 1; i < n; ++i)
    if (tokens[i] >= tb && tokens[i - 1] >= tb) slices.push_back(i);
  if (!slices.empty()) {
    if (single_ending) slices.push_back(n);
    size_t last = 0;
    for (size_t cur : slices) {
      std::vector<int32_t> part(tokens.begin() + last, tokens.begin() + cur);
      cuts.push_back({offset + (part.front() - tb) * kTimePrecision, offset + (part.back() - tb) * kTimePrecision,
                      std::move(part)});
      last = cur;
    }
    if (single_ending) seek += segment_size;
    else seek += static_cast<int64_t>(tokens[last - 1] - tb) * kInputStride;
  } else {
    double duration = segment_size * 0.01;
    int32_t last_ts = -1;
    for (int32_t t : tokens)
      if (t >= tb) last_ts = t;
    if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * kTimePrecision;
    cuts.push_back({offset, offset + duration, tokens});
    seek += segment_size;
  }
  return cuts;
}

}  // namespace

Transcript transcribe(const WhisperModel& m, const std::vector<float>& samples, const TranscribeOptions& opt,
                      ops::ThreadPool& pool) {
  audio::VectorSource source(samples.data(), samples.size());
  return transcribe(m, source, opt, pool);
}

Transcript transcribe(const WhisperModel& m, audio::SampleSource& source, const TranscribeOptions& opt,
                      ops::ThreadPool& pool) {
  const WhisperConfig& c = m.config();
  const WhisperTokens tk = WhisperTokens::of(m);
  Transcript tr;
  if (opt.task != "transcribe" && opt.task != "translate") throw InvalidArgument("task must be transcribe or translate");
  if (opt.task == "translate" && !c.multilingual) throw InvalidArgument("this Whisper model is English-only: no translate");
  if (opt.temperatures.empty()) throw InvalidArgument("at least one temperature is needed");
  for (float t : opt.temperatures)
    if (!(t >= 0 && t <= 10)) throw InvalidArgument("temperatures must be in [0, 10]");
  int32_t lang = -1;
  if (opt.language != "auto" && !opt.language.empty()) {
    lang = language_token(m, opt.language);
    if (lang < 0)
      throw InvalidArgument("language '" + opt.language + "' is not one this Whisper model knows" +
                            (c.multilingual ? "" : " (it is English-only)"));
    tr.language = opt.language;
  }
  audio::MelWindows mel(source, c.n_mels);
  tr.duration = static_cast<double>(mel.n_samples()) / audio::kSampleRate;
  // The reference drops the last frame (it covers the appended padding only).
  const int64_t content = std::max<int64_t>(1, mel.n_frames() - 1);
  const int64_t W = c.n_frames();
  std::mt19937_64 rng(opt.seed);
  std::vector<int32_t> all_tokens;  // the text so far (with timestamps), the source of prompts
  size_t prompt_reset_since = 0;
  if (!trim(opt.initial_prompt).empty()) {
    const auto ids = m.tokenizer().encode(" " + trim(opt.initial_prompt), false, false);
    all_tokens.insert(all_tokens.end(), ids.begin(), ids.end());
  }
  std::vector<float> window(static_cast<size_t>(c.n_mels) * W);
  for (int64_t seek = 0; seek < content;) {
    const int64_t size = std::min(W, content - seek);
    // The window's frames, zero-padded to 30 s (the reference pads the log-mel with 0).
    const auto t0 = Clock::now();
    mel.window(seek, size, window.data(), W);
    const auto t1 = Clock::now();
    const auto cross = WhisperDecoder::cross_kv(m, m.encode(window.data(), pool), pool);
    const auto t2 = Clock::now();
    const int64_t steps0 = m.decoder_steps();
    tr.timing.mel += seconds(t0, t1);
    tr.timing.encode += seconds(t1, t2);
    if (lang < 0) {
      auto [code, p] = detect_language(m, cross, pool);
      tr.language = code, tr.language_probability = p;
      lang = language_token(m, code);
    }
    // [<|startofprev|> the last 223 tokens of text] <|startoftranscript|> [language task]
    // [<|notimestamps|>]
    std::vector<int32_t> prompt;
    if (all_tokens.size() > prompt_reset_since) {
      const size_t keep = static_cast<size_t>(c.n_text_ctx / 2 - 1);
      const size_t from = std::max(prompt_reset_since, all_tokens.size() > keep ? all_tokens.size() - keep : 0);
      prompt.push_back(tk.sot_prev);
      prompt.insert(prompt.end(), all_tokens.begin() + from, all_tokens.end());
    }
    prompt.push_back(tk.sot);
    if (c.multilingual) {
      prompt.push_back(lang);
      prompt.push_back(special(m, opt.task == "translate" ? "<|translate|>" : "<|transcribe|>"));
    }
    if (!opt.timestamps) prompt.push_back(tk.no_timestamps);
    const Decoded d = decode_with_fallback(m, tk, cross, prompt, opt, rng, pool);
    tr.timing.decode += seconds(t2, Clock::now());
    tr.timing.steps += m.decoder_steps() - steps0;
    if (opt.no_speech_threshold && d.g.no_speech_prob > *opt.no_speech_threshold &&
        !(opt.log_prob_threshold && d.avg_logprob > *opt.log_prob_threshold)) {
      seek += size;  // silence: on to the next window
      continue;
    }
    const int64_t window_seek = seek;
    for (Cut& cut : split_by_timestamps(tk, d.g.tokens, seek * 0.01, size, seek)) {
      Segment s;
      s.text = text_of(m, tk, cut.tokens);
      if (cut.start == cut.end || trim(s.text).empty()) continue;
      all_tokens.insert(all_tokens.end(), cut.tokens.begin(), cut.tokens.end());
      s.start = cut.start, s.end = cut.end;
      s.tokens = std::move(cut.tokens);
      s.seek = window_seek;
      s.temperature = d.temperature;
      s.avg_logprob = static_cast<float>(d.avg_logprob);
      s.compression_ratio = static_cast<float>(d.compression_ratio);
      s.no_speech_prob = d.g.no_speech_prob;
      tr.text += s.text;
      tr.segments.push_back(std::move(s));
    }
    if (seek <= window_seek) seek = window_seek + size;  // <|0.00|><|0.00|> alone: move on all the same
    if (!opt.condition_on_previous_text || d.temperature > opt.prompt_reset_on_temperature)
      prompt_reset_since = all_tokens.size();
  }
  tr.text = trim(tr.text);
  return tr;
}

}  // namespace edgellm::asr
