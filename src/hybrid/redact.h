#pragma once
// Reversible redaction: detected values become placeholders like [EMAIL_1] before text leaves
// the device; the mapping stays here and restores the cloud's answer, also when it arrives as a
// stream whose chunks may split a placeholder anywhere.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hybrid/pii.h"

namespace edgellm::hybrid {

class Redactor {
 public:
  // Replaces each span of `text` (from PiiDetector::scan on the same text) by its placeholder.
  // The same label+value gets the same placeholder across all calls on this Redactor, so one
  // request's messages share a numbering.
  std::string redact(std::string_view text, const std::vector<PiiSpan>& spans);
  // Replaces every known placeholder by its original value; unknown bracketed text is kept.
  std::string restore(std::string_view text) const;

  // placeholder -> original value
  const std::map<std::string, std::string>& mapping() const { return by_placeholder_; }
  size_t longest_placeholder() const { return longest_; }
  bool empty() const { return by_placeholder_.empty(); }

 private:
  std::map<std::string, std::string> by_placeholder_;
  std::map<std::string, std::string> by_value_;  // label + '\0' + value -> placeholder
  std::map<std::string, int> next_index_;        // label -> last number used
  size_t longest_ = 0;
};

// Incremental restore for streamed answers, like a stop-string matcher: text that could still
// become a placeholder (e.g. "[EMA") is held back until the next chunk decides it.
class StreamRestorer {
 public:
  explicit StreamRestorer(const Redactor& redactor) : r_(redactor) {}
  // Returns the text that can be emitted now (possibly empty).
  std::string push(std::string_view chunk);
  // End of stream: returns whatever is still held back, restored where complete.
  std::string finish();

 private:
  const Redactor& r_;
  std::string pending_;
};

}  // namespace edgellm::hybrid
