#pragma once
// Content checksums (XXH3, 64-bit, from Debian's libxxhash): identify the exact model file a
// saved session belongs to, and detect a damaged session file.
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgellm::io {

class GgufFile;

// Checksum of the whole file's bytes. Read with pread, not through the mapping, so pages the
// engine released after repacking (GgufFile::release_pages) are not faulted back in; about
// 0.2 s per GB from the page cache. A from_memory file hashes its buffer.
uint64_t checksum_file(const GgufFile& file);

// Incremental checksum of a byte stream (session files).
class StreamChecksum {
 public:
  StreamChecksum();
  ~StreamChecksum();
  StreamChecksum(const StreamChecksum&) = delete;
  StreamChecksum& operator=(const StreamChecksum&) = delete;
  void update(const void* data, size_t n);
  uint64_t digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace edgellm::io
