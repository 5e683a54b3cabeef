#include "model/page_arena.h"

#include <sys/mman.h>

#include <new>
#include <utility>

namespace edgellm::model {
namespace {

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

PageArena::PageArena(size_t chunk_bytes) : chunk_bytes_(round_up(chunk_bytes ? chunk_bytes : 1, kHugePage)) {}

PageArena::~PageArena() { release(); }

PageArena::PageArena(PageArena&& other) noexcept
    : chunk_bytes_(other.chunk_bytes_),
      mappings_(std::move(other.mappings_)),
      cursor_(std::exchange(other.cursor_, nullptr)),
      left_(std::exchange(other.left_, 0)),
      allocations_(std::exchange(other.allocations_, 0)) {
  other.mappings_.clear();
}

PageArena& PageArena::operator=(PageArena&& other) noexcept {
  if (this != &other) {
    release();
    chunk_bytes_ = other.chunk_bytes_;
    mappings_ = std::move(other.mappings_);
    other.mappings_.clear();
    cursor_ = std::exchange(other.cursor_, nullptr);
    left_ = std::exchange(other.left_, 0);
    allocations_ = std::exchange(other.allocations_, 0);
  }
  return *this;
}

void PageArena::release() noexcept {
  for (const Mapping& m : mappings_) ::munmap(m.base, m.size);
  mappings_.clear();
  cursor_ = nullptr;
  left_ = 0;
}

uint8_t* PageArena::map(size_t bytes) {
  // Over-reserve by one huge page and trim both ends, so the mapping starts on a 2 MiB boundary
  // (mmap alone promises only 4 KiB alignment, and a huge page needs an aligned 2 MiB range).
  const size_t reserve = bytes + kHugePage;
  mappings_.reserve(mappings_.size() + 1);  // so recording the mapping cannot throw and leak it
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = round_up(start, kHugePage);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + reserve, used_end = aligned + bytes;
  if (end > used_end) ::munmap(reinterpret_cast<void*>(used_end), end - used_end);
  void* base = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  ::madvise(base, bytes, MADV_HUGEPAGE);  // advice only: EINVAL without THP support is fine
#endif
  mappings_.push_back({base, bytes});
  return static_cast<uint8_t*>(base);
}

uint8_t* PageArena::allocate(size_t bytes) {
  if (bytes > (size_t(1) << 62)) throw std::bad_alloc();  // no rounding below can overflow
  const size_t need = round_up(bytes ? bytes : 1, kAlign);
  if (need > chunk_bytes_ / 2) {
    ++allocations_;
    return map(round_up(need, kHugePage));
  }
  if (need > left_) {
    cursor_ = map(chunk_bytes_);
    left_ = chunk_bytes_;
  }
  uint8_t* p = cursor_;
  cursor_ += need;
  left_ -= need;
  ++allocations_;
  return p;
}

size_t PageArena::mapped_bytes() const {
  size_t n = 0;
  for (const Mapping& m : mappings_) n += m.size;
  return n;
}

}  // namespace edgellm::model
