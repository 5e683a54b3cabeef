// edgellm transcribe FILE -m WHISPER.gguf: speech to text on the device (docs/whisper.md).
#include <chrono>
#include <cstdio>
#include <vector>

#include "asr/transcribe.h"
#include "audio/audio.h"
#include "audio/stream.h"
#include "cli/command.h"
#include "cli/common.h"

namespace edgellm::cli {
namespace {

struct TranscribeArgs {
  std::string in, model, language = "auto", format = "text", task = "transcribe", prompt;
  int threads = 0, best_of = 5, beam_size = 5;
  float patience = 1.0f;
  float temperature = 0.0f, temperature_increment = 0.2f;
  float no_speech_threshold = 0.6f, logprob_threshold = -1.0f, compression_ratio_threshold = 2.4f;
  bool timing = false, timestamps = false, no_previous_text = false;
};

// OpenAI's CLI: from --temperature up to 1.0 in steps of the increment (0: that one only).
std::vector<float> temperatures(float start, float inc) {
  std::vector<float> t;
  if (inc <= 0) return {start};
  for (int i = 0; start + i * inc <= 1.0f + 1e-6f; ++i) t.push_back(start + i * inc);
  if (t.empty()) t.push_back(start);
  return t;
}

Registrar reg("transcribe", "Speech to text with a Whisper model (WAV, FLAC, OGG, MP3)", [](CLI::App& app) {
  auto a = std::make_shared<TranscribeArgs>();
  app.add_option("audio", a->in, "Audio file")->required();
  app.add_option("-m,--model", a->model, "Whisper GGUF (from `edgellm convert`)")->required();
  app.add_option("--language", a->language, "Language code (en, zh, ...) or auto (default)");
  app.add_option("--task", a->task, "transcribe (default) or translate (to English)");
  app.add_option("--format", a->format, "text (default), json, srt, vtt")
      ->check(CLI::IsMember({"text", "json", "srt", "vtt"}));
  app.add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  app.add_flag("--timestamps", a->timestamps,
               "Segment timestamps from the model (always on for srt and vtt; json then has real segment times)");
  app.add_option("--prompt", a->prompt, "Text before the first window (names, spelling, style)");
  app.add_flag("--no-previous-text", a->no_previous_text, "Do not prompt each window with the text before it");
  app.add_option("--temperature", a->temperature, "First temperature (default 0: greedy)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--temperature-increment", a->temperature_increment,
                 "Fallback step up to 1.0 when a window fails the thresholds (default 0.2; 0: no fallback)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--beam-size", a->beam_size, "Beam search width at temperature 0 (default 5, as OpenAI's CLI; 1: greedy)")
      ->check(CLI::Range(1, 16));
  app.add_option("--patience", a->patience, "Beam search patience (default 1)")->check(CLI::Range(0.1, 4.0));
  app.add_option("--best-of", a->best_of, "Samples per fallback temperature (default 5)")->check(CLI::Range(1, 64));
  app.add_option("--no-speech-threshold", a->no_speech_threshold,
                 "Skip a window when P(no speech) is above this and the log-prob is low (default 0.6)");
  app.add_option("--logprob-threshold", a->logprob_threshold, "Fall back below this average log-prob (default -1)");
  app.add_option("--compression-ratio-threshold", a->compression_ratio_threshold,
                 "Fall back above this gzip ratio of the text (default 2.4)");
  app.add_flag("--timing", a->timing, "Print load/transcribe seconds and the real-time factor to stderr");
  app.callback([a] {
    using clk = std::chrono::steady_clock;
    const auto t0 = clk::now();
    auto model = asr::WhisperModel::load(a->model);
    ops::ThreadPool pool(a->threads);
    // Decoded and resampled as the windows need it: memory independent of the file's length.
    audio::FileSource source(a->in);
    const auto t1 = clk::now();
    asr::TranscribeOptions opt;
    opt.language = a->language;
    opt.task = a->task;
    opt.timestamps = a->timestamps || a->format == "srt" || a->format == "vtt";
    opt.initial_prompt = a->prompt;
    opt.condition_on_previous_text = !a->no_previous_text;
    opt.temperatures = temperatures(a->temperature, a->temperature_increment);
    opt.best_of = a->best_of;
    opt.beam_size = a->beam_size;
    opt.patience = a->patience;
    opt.no_speech_threshold = a->no_speech_threshold;
    opt.log_prob_threshold = a->logprob_threshold;
    opt.compression_ratio_threshold = a->compression_ratio_threshold;
    const asr::Transcript tr = asr::transcribe(*model, source, opt, pool);
    const auto t2 = clk::now();
    std::fputs(asr::format_transcript(tr, a->format).c_str(), stdout);
    if (a->timing) {
      const double load = std::chrono::duration<double>(t1 - t0).count();
      const double run = std::chrono::duration<double>(t2 - t1).count();
      std::fprintf(stderr, "timing: load %.3f s, transcribe %.3f s, audio %.3f s, rtf %.4f\n", load, run,
                   tr.duration, run / tr.duration);
      std::fprintf(stderr, "timing: mel %.3f s, encoder + cross K/V %.3f s, decoding %.3f s (%lld decoder steps, %.2f ms each)\n",
                   tr.timing.mel, tr.timing.encode, tr.timing.decode, static_cast<long long>(tr.timing.steps),
                   tr.timing.steps ? 1e3 * tr.timing.decode / static_cast<double>(tr.timing.steps) : 0.0);
    }
  });
});

}  // namespace
}  // namespace edgellm::cli
