#pragma once
// Anonymous memory for the repacked weight matrices, in mappings aligned to 2 MiB and advised for
// transparent huge pages. Decode streams every weight once per token (about 1 GB on a 1.5B
// Q4_K_M model); with 4 KiB pages that is a TLB miss and page walk every 4 KiB of the stream.
// Where the kernel's THP mode is "madvise" (the common default) only advised memory gets huge
// pages; elsewhere the advice is harmless. Pages are committed only as they are first written.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgellm::model {

class PageArena {
 public:
  // Allocations up to chunk_bytes / 2 share chunks of chunk_bytes; larger ones get a mapping of
  // their own (rounded up to 2 MiB), so no chunk's tail is left mostly unused.
  explicit PageArena(size_t chunk_bytes = size_t(32) << 20);
  ~PageArena();
  PageArena(PageArena&& other) noexcept;
  PageArena& operator=(PageArena&& other) noexcept;
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;

  // `bytes` of uninitialised memory aligned to kAlign, valid until the arena is destroyed.
  // Throws std::bad_alloc when the system has no address space or memory for it.
  uint8_t* allocate(size_t bytes);

  size_t mapped_bytes() const;  // address space reserved (not all of it resident)
  size_t allocations() const { return allocations_; }

  static constexpr size_t kAlign = 64;
  static constexpr size_t kHugePage = size_t(2) << 20;

 private:
  struct Mapping {
    void* base;
    size_t size;
  };
  uint8_t* map(size_t bytes);  // a new mapping of `bytes` (a multiple of kHugePage), advised
  void release() noexcept;

  size_t chunk_bytes_;
  std::vector<Mapping> mappings_;
  uint8_t* cursor_ = nullptr;  // free space of the current shared chunk
  size_t left_ = 0;
  size_t allocations_ = 0;
};

}  // namespace edgellm::model
