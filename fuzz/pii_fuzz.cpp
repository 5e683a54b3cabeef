// libFuzzer target for the PII scanner and the redaction round trip (hybrid routing sends
// redacted text to the cloud and restores the answer). Input: the text. Invariants: spans are
// sorted, disjoint, inside the text, on code point boundaries and hold the text they cover;
// restoring the redacted text gives the original back (when the original holds no '[' that
// could pose as a placeholder); restoring a stream cut anywhere equals restoring it whole.
#include <string>

#include "fuzz_util.h"
#include "hybrid/pii.h"
#include "hybrid/redact.h"

using namespace edgellm;

namespace {

const hybrid::PiiDetector& detector() {
  static const hybrid::PiiDetector d([] {
    hybrid::PiiConfig c;
    c.patterns.push_back({"employee id", "EMP-[0-9]{4}"});
    c.keywords = {"Project Falcon", "机密"};
    return c;
  }());
  return d;
}

bool boundary(const std::string& s, size_t i) {
  return i == s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)detector();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::Rng rng(text);
  const auto spans = detector().scan(text);
  size_t prev = 0;
  const bool utf8 = fuzz::valid_utf8(text);
  for (const auto& s : spans) {
    fuzz::check(s.begin >= prev && s.begin < s.end && s.end <= text.size(), "pii_fuzz", "spans sorted, disjoint, inside");
    fuzz::check(s.value == text.substr(s.begin, s.end - s.begin), "pii_fuzz", "span value is the text it covers");
    if (utf8) fuzz::check(boundary(text, s.begin) && boundary(text, s.end), "pii_fuzz", "span on code point boundaries");
    prev = s.end;
  }

  hybrid::Redactor r;
  const std::string red = r.redact(text, spans);
  const std::string back = r.restore(red);
  if (text.find('[') == std::string::npos)
    fuzz::check(back == text, "pii_fuzz", "restore(redact(text)) == text");

  // The cloud's answer streams in chunks that may split a placeholder anywhere.
  hybrid::StreamRestorer sr(r);
  std::string streamed;
  for (size_t at = 0; at < red.size();) {
    const size_t n = 1 + rng.below(std::min<size_t>(red.size() - at, 16));
    streamed += sr.push(std::string_view(red).substr(at, n));
    at += n;
  }
  streamed += sr.finish();
  fuzz::check(streamed == back, "pii_fuzz", "streamed restore equals whole restore");
  return 0;
}
