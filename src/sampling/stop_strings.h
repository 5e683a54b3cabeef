#pragma once
// Incremental stop-string matcher for streamed generation. Text is fed as it is decoded; the
// matcher releases only text that can no longer be part of a stop string, so a stream never
// shows a partial stop string. Text ending in an incomplete UTF-8 sequence is also held back,
// so every released piece is whole characters (when the input is valid UTF-8).
//
// Where stops overlap, the match that completes first in the text wins (ties: the longer one).
// This choice makes the outcome independent of how the text is split into chunks.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace edgellm::sampling {

class StopStringMatcher {
 public:
  struct Result {
    std::string emit;     // text safe to show now (before any stop string)
    bool stopped = false; // a stop string completed; generation should end
    int stop_index = -1;  // which stop string (index into the constructor's list)
  };

  // Empty strings in `stops` are ignored.
  explicit StopStringMatcher(std::vector<std::string> stops, bool hold_partial_utf8 = true);

  // Feeds the next piece of generated text. After a stop, further feeds return nothing.
  Result feed(std::string_view text);
  // End of generation without a stop: releases everything still held back.
  std::string flush();
  void reset();

  bool stopped() const { return stopped_; }
  // Bytes currently held back.
  size_t pending() const { return buf_.size(); }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  std::vector<std::string> stops_;
  std::vector<int> index_;  // original index of each kept stop string
  bool hold_utf8_;
  std::string buf_;         // held-back text (a possible stop prefix / partial UTF-8 char)
  bool stopped_ = false;
};

}  // namespace edgellm::sampling
