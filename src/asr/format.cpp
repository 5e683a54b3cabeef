// Transcript output formats: plain text, JSON (OpenAI's verbose_json fields), SubRip, WebVTT.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "asr/transcribe.h"
#include "util/error.h"

namespace edgellm::asr {
namespace {

std::string clock(double s, char frac_sep) {
  const long ms = std::lround(s * 1000);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, frac_sep,
                ms % 1000);
  return buf;
}

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b);
}

}  // namespace

std::string format_transcript(const Transcript& t, const std::string& format) {
  if (format == "text") return t.text + "\n";
  if (format == "json") {
    nlohmann::json segs = nlohmann::json::array();
    for (size_t i = 0; i < t.segments.size(); ++i) {
      const Segment& s = t.segments[i];
      segs.push_back({{"id", i}, {"seek", s.seek}, {"start", s.start}, {"end", s.end}, {"text", s.text},
                      {"tokens", s.tokens}, {"temperature", s.temperature}, {"avg_logprob", s.avg_logprob},
                      {"compression_ratio", s.compression_ratio}, {"no_speech_prob", s.no_speech_prob}});
    }
    nlohmann::json j = {{"text", t.text}, {"language", t.language}, {"language_probability", t.language_probability},
                        {"duration", t.duration}, {"segments", segs}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (format == "srt" || format == "vtt") {
    std::string out = format == "vtt" ? "WEBVTT\n\n" : "";
    for (size_t i = 0; i < t.segments.size(); ++i) {
      const Segment& s = t.segments[i];
      if (format == "srt") out += std::to_string(i + 1) + "\n";
      const char sep = format == "srt" ? ',' : '.';
      out += clock(s.start, sep) + " --> " + clock(s.end, sep) + "\n" + trimmed(s.text) + "\n\n";
    }
    return out;
  }
  throw InvalidArgument("unknown transcript format '" + format + "' (text, json, srt, vtt)");
}

}  // namespace edgellm::asr
