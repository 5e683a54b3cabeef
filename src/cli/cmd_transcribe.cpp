// edgellm transcribe FILE -m WHISPER.gguf: speech to text on the device (docs/whisper.md).
#include <chrono>
#include <cstdio>

#include "asr/transcribe.h"
#include "audio/audio.h"
#include "cli/command.h"
#include "cli/common.h"

namespace edgellm::cli {
namespace {

struct TranscribeArgs {
  std::string in, model, language = "auto", format = "text", task = "transcribe";
  int threads = 0;
  bool timing = false;
};

Registrar reg("transcribe", "Speech to text with a Whisper model (WAV, FLAC, OGG, MP3)", [](CLI::App& app) {
  auto a = std::make_shared<TranscribeArgs>();
  app.add_option("audio", a->in, "Audio file")->required();
  app.add_option("-m,--model", a->model, "Whisper GGUF (from `edgellm convert`)")->required();
  app.add_option("--language", a->language, "Language code (en, zh, ...) or auto (default)");
  app.add_option("--task", a->task, "transcribe (default) or translate (to English)");
  app.add_option("--format", a->format, "text (default), json, srt, vtt")
      ->check(CLI::IsMember({"text", "json", "srt", "vtt"}));
  app.add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
  app.add_flag("--timing", a->timing, "Print load/transcribe seconds and the real-time factor to stderr");
  app.callback([a] {
    using clk = std::chrono::steady_clock;
    const auto t0 = clk::now();
    auto model = asr::WhisperModel::load(a->model);
    ops::ThreadPool pool(a->threads);
    const auto samples = audio::load_16k(a->in);
    const auto t1 = clk::now();
    asr::TranscribeOptions opt;
    opt.language = a->language;
    opt.task = a->task;
    const asr::Transcript tr = asr::transcribe(*model, samples, opt, pool);
    const auto t2 = clk::now();
    std::fputs(asr::format_transcript(tr, a->format).c_str(), stdout);
    if (a->timing) {
      const double load = std::chrono::duration<double>(t1 - t0).count();
      const double run = std::chrono::duration<double>(t2 - t1).count();
      std::fprintf(stderr, "timing: load %.3f s, transcribe %.3f s, audio %.3f s, rtf %.4f\n", load, run,
                   tr.duration, run / tr.duration);
    }
  });
});

}  // namespace
}  // namespace edgellm::cli
