#include "sampling/stop_strings.h"

#include <algorithm>

namespace edgellm::sampling {
namespace {

// Length of the trailing incomplete UTF-8 sequence of s (0 if s ends on a whole character or
// ends in bytes that can never complete one).
size_t partial_utf8_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 0;
    if ((b & 0xE0) == 0xC0) need = 2;
    else if ((b & 0xF0) == 0xE0) need = 3;
    else if ((b & 0xF8) == 0xF0) need = 4;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool hold_partial_utf8)
    : hold_utf8_(hold_partial_utf8) {
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty()) continue;
    stops_.push_back(std::move(stops[i]));
    index_.push_back(static_cast<int>(i));
  }
}

void StopStringMatcher::reset() {
  buf_.clear();
  stopped_ = false;
}

StopStringMatcher::Result StopStringMatcher::feed(std::string_view text) {
  Result r;
  if (stopped_) return r;
  buf_.append(text);

  // Earliest-ending occurrence of any stop; for a fixed string its first occurrence ends first.
  size_t best_end = std::string::npos, best_start = 0;
  int best = -1;
  for (size_t k = 0; k < stops_.size(); ++k) {
    const size_t pos = buf_.find(stops_[k]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[k].size();
    if (best < 0 || end < best_end || (end == best_end && pos < best_start)) {
      best = static_cast<int>(k);
      best_end = end;
      best_start = pos;
    }
  }
  if (best >= 0) {
    r.emit = buf_.substr(0, best_start);
    r.stopped = true;
    r.stop_index = index_[static_cast<size_t>(best)];
    stopped_ = true;
    buf_.clear();
    return r;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, buf_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (buf_.compare(buf_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  if (hold_utf8_) hold = std::max(hold, partial_utf8_tail(buf_));
  r.emit = buf_.substr(0, buf_.size() - hold);
  buf_.erase(0, buf_.size() - hold);
  return r;
}

std::string StopStringMatcher::flush() {
  std::string out;
  if (!stopped_) out.swap(buf_);
  buf_.clear();
  return out;
}

}  // namespace edgellm::sampling
