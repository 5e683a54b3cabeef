#include "asr/transcribe.h"

#include <algorithm>
#include <cmath>

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
  WhisperDecoder dec(m, encoded, pool);
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
  const WhisperConfig& c = m.config();
  const int32_t eot = special(m, "<|endoftext|>");
  const int32_t first_timestamp = special(m, "<|notimestamps|>") + 1;
  WhisperDecoder dec(m, encoded, pool);
  std::vector<int32_t> out;
  std::vector<float> logits = dec.feed(prompt);
  while (true) {
    for (int32_t id : c.suppress_ids) logits[id] = -INFINITY;
    if (out.empty())  // suppress_blank: no leading space or end at the first step
      for (int32_t id : c.suppress_ids_begin) logits[id] = -INFINITY;
    // Without timestamps in the prompt, timestamp tokens are never sampled.
    for (int32_t id = first_timestamp; id < c.n_vocab; ++id) logits[id] = -INFINITY;
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (next == eot) break;
    out.push_back(next);
    // At most half the text context is sampled (OpenAI's sample_len; CTranslate2 stops there
    // too): a window stuck repeating a token ends after 224.
    if (static_cast<int>(out.size()) >= c.n_text_ctx / 2 || dec.n_past() + 1 >= c.n_text_ctx) break;
    logits = dec.feed({next});
  }
  return out;
}

Transcript transcribe(const WhisperModel& m, const std::vector<float>& samples, const TranscribeOptions& opt,
                      ops::ThreadPool& pool) {
  const WhisperConfig& c = m.config();
  Transcript tr;
  tr.duration = static_cast<double>(samples.size()) / audio::kSampleRate;
  const audio::LogMel mel = audio::log_mel(samples.data(), samples.size(), c.n_mels);
  // The reference drops the last frame (it covers the appended padding only).
  const int64_t content = std::max<int64_t>(1, mel.n_frames - 1);
  const int64_t W = c.n_frames();
  if (opt.task != "transcribe" && opt.task != "translate") throw InvalidArgument("task must be transcribe or translate");
  if (opt.task == "translate" && !c.multilingual) throw InvalidArgument("this Whisper model is English-only: no translate");
  int32_t lang = -1;
  if (opt.language != "auto" && !opt.language.empty()) {
    lang = language_token(m, opt.language);
    if (lang < 0)
      throw InvalidArgument("language '" + opt.language + "' is not one this Whisper model knows" +
                            (c.multilingual ? "" : " (it is English-only)"));
    tr.language = opt.language;
  }
  std::vector<float> window(static_cast<size_t>(c.n_mels) * W);
  for (int64_t seek = 0; seek < content; seek += W) {
    const int64_t size = std::min(W, content - seek);
    // The window's frames, zero-padded to 30 s (the reference pads the log-mel with 0).
    std::fill(window.begin(), window.end(), 0.0f);
    for (int b = 0; b < c.n_mels; ++b)
      std::copy_n(mel.data.data() + b * mel.n_frames + seek, size, window.data() + static_cast<size_t>(b) * W);
    const std::vector<float> enc = m.encode(window.data(), pool);
    if (lang < 0) {
      auto [code, p] = detect_language(m, enc, pool);
      tr.language = code, tr.language_probability = p;
      lang = language_token(m, code);
    }
    std::vector<int32_t> prompt = {special(m, "<|startoftranscript|>")};
    if (c.multilingual) {
      prompt.push_back(lang);
      prompt.push_back(special(m, opt.task == "translate" ? "<|translate|>" : "<|transcribe|>"));
    }
    prompt.push_back(special(m, "<|notimestamps|>"));
    Segment s;
    s.tokens = greedy_decode(m, enc, prompt, pool);
    s.text = m.tokenizer().decode(s.tokens, true);
    s.start = seek * 0.01;
    s.end = std::min(tr.duration, (seek + W) * 0.01);
    if (!trim(s.text).empty()) {
      tr.text += s.text;
      tr.segments.push_back(std::move(s));
    }
  }
  tr.text = trim(tr.text);
  return tr;
}

}  // namespace edgellm::asr
