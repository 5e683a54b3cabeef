// edgellm features AUDIO OUT.f32: Whisper's log-mel of an audio file as raw float32
// [n_mels][n_frames], for checks against reference implementations (tests/python).
#include <cstdio>
#include <fstream>

#include "audio/audio.h"
#include "audio/mel.h"
#include "cli/command.h"

namespace edgellm::cli {
namespace {

struct FeatureArgs {
  std::string in, out;
  int n_mels = 80;
};

Registrar reg("features", "Whisper log-mel spectrogram of an audio file (raw float32, mel-major)",
              [](CLI::App& app) {
                auto a = std::make_shared<FeatureArgs>();
                app.add_option("audio", a->in, "WAV, FLAC, OGG or MP3 file")->required();
                app.add_option("output", a->out, "Output file (float32 [n_mels][n_frames])")->required();
                app.add_option("--mels", a->n_mels, "Mel bins (80)");
                app.callback([a] {
                  const auto samples = audio::load_16k(a->in);
                  const auto mel = audio::log_mel(samples.data(), samples.size(), a->n_mels);
                  std::ofstream f(a->out, std::ios::binary);
                  f.write(reinterpret_cast<const char*>(mel.data.data()),
                          static_cast<std::streamsize>(mel.data.size() * sizeof(float)));
                  if (!f) throw Error("cannot write " + a->out);
                  std::printf("%d %lld\n", mel.n_mels, static_cast<long long>(mel.n_frames));
                });
              });

}  // namespace
}  // namespace edgellm::cli
