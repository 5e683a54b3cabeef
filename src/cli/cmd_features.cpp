// edgellm features AUDIO OUT.f32: Whisper's log-mel of an audio file as raw float32
// [n_mels][n_frames], for checks against reference implementations (tests/python).
#include <cstdio>
#include <fstream>

#include "asr/whisper.h"
#include "audio/audio.h"
#include "audio/mel.h"
#include "cli/command.h"

namespace edgellm::cli {
namespace {

struct FeatureArgs {
  std::string in, out;
  std::string model, encoder_out;
  int n_mels = 80, threads = 0;
};

Registrar reg("features", "Whisper log-mel spectrogram of an audio file (raw float32, mel-major)",
              [](CLI::App& app) {
                auto a = std::make_shared<FeatureArgs>();
                app.add_option("audio", a->in, "WAV, FLAC, OGG or MP3 file")->required();
                app.add_option("output", a->out, "Output file (float32 [n_mels][n_frames])")->required();
                app.add_option("--mels", a->n_mels, "Mel bins (80)");
                app.add_option("-m,--model", a->model, "Whisper GGUF, for --encoder");
                app.add_option("--encoder", a->encoder_out,
                               "Also write the encoder output of the first 30 s window (float32 [1500][d])");
                app.add_option("-t,--threads", a->threads, "Threads for --encoder");
                app.callback([a] {
                  const auto samples = audio::load_16k(a->in);
                  const auto mel = audio::log_mel(samples.data(), samples.size(), a->n_mels);
                  std::ofstream f(a->out, std::ios::binary);
                  f.write(reinterpret_cast<const char*>(mel.data.data()),
                          static_cast<std::streamsize>(mel.data.size() * sizeof(float)));
                  if (!f) throw Error("cannot write " + a->out);
                  std::printf("%d %lld\n", mel.n_mels, static_cast<long long>(mel.n_frames));
                  if (a->encoder_out.empty()) return;
                  if (a->model.empty()) throw InvalidArgument("--encoder needs -m WHISPER.gguf");
                  auto m = asr::WhisperModel::load(a->model);
                  const int64_t W = m->config().n_frames();
                  if (m->config().n_mels != mel.n_mels) throw InvalidArgument("--mels differs from the model's");
                  // The first window, zero-padded in log-mel space as the reference does.
                  std::vector<float> window(static_cast<size_t>(mel.n_mels) * W, 0.0f);
                  const int64_t n = std::min<int64_t>(W, mel.n_frames - 1);
                  for (int b = 0; b < mel.n_mels; ++b)
                    std::copy_n(mel.data.data() + b * mel.n_frames, n, window.data() + static_cast<size_t>(b) * W);
                  ops::ThreadPool pool(a->threads);
                  const auto enc = m->encode(window.data(), pool);
                  std::ofstream e(a->encoder_out, std::ios::binary);
                  e.write(reinterpret_cast<const char*>(enc.data()), static_cast<std::streamsize>(enc.size() * 4));
                  if (!e) throw Error("cannot write " + a->encoder_out);
                });
              });

}  // namespace
}  // namespace edgellm::cli
