#include "io/checksum.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#define XXH_INLINE_ALL  // header-only: no library to link, the same in the Arm cross build
#include <xxhash.h>

#include "io/gguf.h"
#include "util/error.h"

namespace edgellm::io {

StreamChecksum::StreamChecksum() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}

StreamChecksum::~StreamChecksum() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void StreamChecksum::update(const void* data, size_t n) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}

uint64_t StreamChecksum::digest() const { return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_)); }

uint64_t checksum_file(const GgufFile& file) {
  const int fd = file.path().empty() ? -1 : ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return XXH3_64bits(file.bytes(), file.file_size());  // in memory (or not reopenable)
  StreamChecksum sum;
  std::vector<uint8_t> buf(4u << 20);
  uint64_t done = 0;
  while (done < file.file_size()) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "file shrank while open";
      ::close(fd);
      throw Error(file.path() + ": cannot read for its checksum: " + why);
    }
    sum.update(buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return sum.digest();
}

}  // namespace edgellm::io
