// POST /v1/audio/transcriptions (OpenAI's multipart form) when the server has a Whisper model
// (serve --asr-model): the upload is decoded and resampled on the request's thread, then
// transcribed on the speech model's own pool, one request at a time (asr_worker.h).
// docs/server.md, "Speech to text".
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "asr/transcribe.h"
#include "audio/audio.h"
#include "server/api_error.h"
#include "server/local_job.h"
#include "server/peer_watch.h"
#include "server/server_impl.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

// Whisper's language names, as OpenAI's verbose_json reports the language ("english").
const char* language_name(const std::string& code) {
  static const char* const kNames[][2] = {
      {"en", "english"}, {"zh", "chinese"}, {"de", "german"}, {"es", "spanish"}, {"ru", "russian"},
      {"ko", "korean"}, {"fr", "french"}, {"ja", "japanese"}, {"pt", "portuguese"}, {"tr", "turkish"},
      {"pl", "polish"}, {"ca", "catalan"}, {"nl", "dutch"}, {"ar", "arabic"}, {"sv", "swedish"},
      {"it", "italian"}, {"id", "indonesian"}, {"hi", "hindi"}, {"fi", "finnish"}, {"vi", "vietnamese"},
      {"he", "hebrew"}, {"uk", "ukrainian"}, {"el", "greek"}, {"ms", "malay"}, {"cs", "czech"},
      {"ro", "romanian"}, {"da", "danish"}, {"hu", "hungarian"}, {"ta", "tamil"}, {"no", "norwegian"},
      {"th", "thai"}, {"ur", "urdu"}, {"hr", "croatian"}, {"bg", "bulgarian"}, {"lt", "lithuanian"},
      {"la", "latin"}, {"mi", "maori"}, {"ml", "malayalam"}, {"cy", "welsh"}, {"sk", "slovak"},
      {"te", "telugu"}, {"fa", "persian"}, {"lv", "latvian"}, {"bn", "bengali"}, {"sr", "serbian"},
      {"az", "azerbaijani"}, {"sl", "slovenian"}, {"kn", "kannada"}, {"et", "estonian"}, {"mk", "macedonian"},
      {"br", "breton"}, {"eu", "basque"}, {"is", "icelandic"}, {"hy", "armenian"}, {"ne", "nepali"},
      {"mn", "mongolian"}, {"bs", "bosnian"}, {"kk", "kazakh"}, {"sq", "albanian"}, {"sw", "swahili"},
      {"gl", "galician"}, {"mr", "marathi"}, {"pa", "punjabi"}, {"si", "sinhala"}, {"km", "khmer"},
      {"sn", "shona"}, {"yo", "yoruba"}, {"so", "somali"}, {"af", "afrikaans"}, {"oc", "occitan"},
      {"ka", "georgian"}, {"be", "belarusian"}, {"tg", "tajik"}, {"sd", "sindhi"}, {"gu", "gujarati"},
      {"am", "amharic"}, {"yi", "yiddish"}, {"lo", "lao"}, {"uz", "uzbek"}, {"fo", "faroese"},
      {"ht", "haitian creole"}, {"ps", "pashto"}, {"tk", "turkmen"}, {"nn", "nynorsk"}, {"mt", "maltese"},
      {"sa", "sanskrit"}, {"lb", "luxembourgish"}, {"my", "myanmar"}, {"bo", "tibetan"}, {"tl", "tagalog"},
      {"mg", "malagasy"}, {"as", "assamese"}, {"tt", "tatar"}, {"haw", "hawaiian"}, {"ln", "lingala"},
      {"ha", "hausa"}, {"ba", "bashkir"}, {"jw", "javanese"}, {"su", "sundanese"}, {"yue", "cantonese"}};
  for (const auto& n : kNames)
    if (code == n[0]) return n[1];
  return nullptr;
}

// A form field's value, or null when the form has no part of that name.
const httplib::MultipartFormData* part(const httplib::Request& req, const std::string& name) {
  const auto it = req.files.find(name);
  return it == req.files.end() ? nullptr : &it->second;
}

std::string field(const httplib::Request& req, const std::string& name, const std::string& fallback = "") {
  const auto* p = part(req, name);
  return p ? p->content : fallback;
}

std::string shown(const std::string& s) { return s.size() > 64 ? s.substr(0, 64) + "..." : s; }

struct Form {
  const httplib::MultipartFormData* file = nullptr;
  std::string language = "auto", format = "json", prompt;
  float temperature = 0;
};

Form parse_form(const ServerState& st, const httplib::Request& req) {
  if (!req.is_multipart_form_data())
    throw ApiError(400, "a transcription request is a multipart/form-data body with the audio in a \"file\" part",
                   "file", "invalid_request");
  Form f;
  f.file = part(req, "file");
  if (!f.file) throw ApiError(400, "\"file\" is required: the audio as a multipart file part", "file");
  if (const auto* m = part(req, "model"); m && !m->content.empty()) {
    const std::string& name = m->content;
    // "whisper-1" is OpenAI's name: clients written for it work unchanged.
    if (name != st.opts.asr_model_id && name != "whisper-1") {
      for (const auto& spec : st.pool->specs())
        if (spec.name == name)
          throw ApiError(400, "'" + shown(name) + "' is a chat model and does not transcribe speech; this server's "
                                  "speech model is '" + st.opts.asr_model_id + "'", "model", "model_not_transcription");
      throw ApiError(404, "The model '" + shown(name) + "' does not exist; this server transcribes with '" +
                              st.opts.asr_model_id + "' (or send whisper-1)", "model", "model_not_found");
    }
  }
  const std::string lang = field(req, "language");
  if (!lang.empty() && lang != "auto") {
    if (asr::language_token(*st.opts.asr_model, lang) < 0)
      throw ApiError(400, "language '" + shown(lang) + "' is not one the speech model knows (an ISO-639-1 code such "
                          "as en or zh; leave it out to detect it)", "language", "invalid_value");
    f.language = lang;
  }
  f.format = field(req, "response_format", "json");
  if (f.format != "json" && f.format != "text" && f.format != "srt" && f.format != "vtt" && f.format != "verbose_json")
    throw ApiError(400, "\"response_format\" must be one of json, text, srt, verbose_json, vtt (got '" +
                            shown(f.format) + "')", "response_format", "invalid_value");
  if (const auto* t = part(req, "temperature"); t && !t->content.empty()) {
    char* end = nullptr;
    const double v = std::strtod(t->content.c_str(), &end);
    if (end == t->content.c_str() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1)
      throw ApiError(400, "\"temperature\" must be a number between 0 and 1", "temperature", "invalid_value");
    f.temperature = static_cast<float>(v);
  }
  f.prompt = field(req, "prompt");
  if (f.prompt.size() > 4096)
    throw ApiError(400, "\"prompt\" is longer than 4096 bytes (Whisper reads at most 224 tokens of it)", "prompt",
                   "invalid_value");
  const std::string stream = field(req, "stream", "false");
  if (stream == "true")
    throw ApiError(400, "\"stream\" is not supported for transcriptions yet", "stream", "unsupported_parameter");
  // OpenAI's form field for a list is "name[]"; segment timestamps are always in verbose_json.
  for (const char* key : {"timestamp_granularities[]", "timestamp_granularities"}) {
    const auto range = req.files.equal_range(key);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second.content != "segment")
        throw ApiError(400, "\"timestamp_granularities\" may only hold \"segment\" (word timestamps are not supported)",
                       "timestamp_granularities", "unsupported_parameter");
  }
  return f;
}

double rounded(double s) { return std::round(s * 1000) / 1000; }

ojson verbose_json(const asr::Transcript& t) {
  ojson segs = ojson::array();
  for (size_t i = 0; i < t.segments.size(); ++i) {
    const auto& s = t.segments[i];
    // seek: the window's start in 10 ms mel frames, as Whisper counts it.
    segs.push_back({{"id", i}, {"seek", s.seek}, {"start", rounded(s.start)}, {"end", rounded(s.end)},
                    {"text", s.text}, {"tokens", s.tokens}, {"temperature", s.temperature},
                    {"avg_logprob", s.avg_logprob}, {"compression_ratio", s.compression_ratio},
                    {"no_speech_prob", s.no_speech_prob}});
  }
  const char* name = language_name(t.language);
  return {{"task", "transcribe"}, {"language", name ? name : t.language}, {"duration", rounded(t.duration)},
          {"text", t.text}, {"segments", segs}, {"usage", {{"type", "duration"}, {"seconds", rounded(t.duration)}}}};
}

void transcriptions(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  const Form f = parse_form(st, req);
  const std::string label = "file '" + shown(f.file->filename.empty() ? std::string("upload") : f.file->filename) + "'";
  std::vector<float> samples;
  try {
    samples = audio::load_16k_memory(reinterpret_cast<const uint8_t*>(f.file->content.data()), f.file->content.size(),
                                     label);
  } catch (const audio::AudioError& e) {
    throw ApiError(400, e.what(), "file", "invalid_audio");
  }
  asr::TranscribeOptions opt;
  opt.language = f.language;
  opt.initial_prompt = f.prompt;
  // Segment times only where the format shows them (the model's timestamp tokens cost a little).
  opt.timestamps = f.format == "srt" || f.format == "vtt" || f.format == "verbose_json";
  // OpenAI: 0 lets the model raise the temperature until the thresholds pass (faster-whisper's
  // fallback); another value is the one temperature used. Greedy at 0 (beam_size 1): the CLI's
  // default beam of 5 costs about five times the decoder time, too much for an interactive server.
  if (f.temperature > 0) opt.temperatures = {f.temperature};
  asr::Transcript t;
  std::unique_ptr<PeerWatch> peer;
  try {
    st.asr->run([&](ops::ThreadPool& pool) { t = asr::transcribe(*st.opts.asr_model, samples, opt, pool); }, [&] {
      if (!peer) peer = std::make_unique<PeerWatch>(req.remote_addr, req.remote_port, req.local_addr, req.local_port);
      return peer->alive();
    });
  } catch (const ClientGone& e) {
    send_error(res, 499, e.what(), "", "client_closed_request");  // nobody reads it; logs do
    return;
  }
  if (f.format == "json") {
    send_json(res, {{"text", t.text}, {"usage", {{"type", "duration"}, {"seconds", rounded(t.duration)}}}});
  } else if (f.format == "verbose_json") {
    send_json(res, verbose_json(t));
  } else {
    res.status = 200;
    res.set_content(asr::format_transcript(t, f.format), "text/plain; charset=utf-8");
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  st.metrics.latency("/v1/audio/transcriptions", secs);
  res.set_header("X-Edgellm-Audio-Seconds", std::to_string(t.duration));
  res.set_header("X-Edgellm-Processing-Seconds", std::to_string(secs));
}

}  // namespace

nlohmann::ordered_json asr_model_json(const ServerState& st) {
  const auto& c = st.opts.asr_model->config();
  return {{"id", st.opts.asr_model_id}, {"object", "model"}, {"created", st.created}, {"owned_by", "edgellm"},
          {"meta", {{"kind", "transcription"}, {"multilingual", c.multilingual}, {"n_mels", c.n_mels},
                    {"d_model", c.d}, {"encoder_layers", c.enc_layers}, {"decoder_layers", c.dec_layers},
                    {"threads", st.asr->threads()}, {"max_upload_bytes", st.opts.max_audio_body}}}};
}

void register_audio_routes(ServerState& st) {
  auto h = guarded([&st](const httplib::Request& req, httplib::Response& res) {
    // Refused in the pre-routing handler already (server.cpp); kept so the route never runs without a model.
    if (!st.opts.asr_model) throw ApiError(400, no_asr_model_message(), "model", "transcription_not_enabled");
    transcriptions(st, req, res);
  });
  st.http.Post("/v1/audio/transcriptions", h);
}

}  // namespace edgellm::server
