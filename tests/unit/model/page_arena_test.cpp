// PageArena (the repacked weights' storage): alignment, no overlap, every byte usable, moves, the
// huge-page advice visible in /proc/self/smaps, and a clear failure for impossible sizes.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "model/page_arena.h"

namespace edgellm::model {
namespace {

struct Block {
  uint8_t* p;
  size_t n;
};

// Fills each block with a pattern of its own, then checks all of them: an overlap or a block
// shorter than asked would overwrite another's bytes.
void fill_and_check(const std::vector<Block>& blocks) {
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t k = 0; k < blocks[i].n; ++k) blocks[i].p[k] = static_cast<uint8_t>(i * 131 + k * 7);
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t k = 0; k < blocks[i].n; ++k)
      ASSERT_EQ(blocks[i].p[k], static_cast<uint8_t>(i * 131 + k * 7)) << "block " << i << " byte " << k;
}

TEST(PageArena, AlignedDisjointAndWritable) {
  PageArena arena(size_t(4) << 20);
  std::vector<Block> blocks;
  // Odd sizes (tails), sizes that fill a chunk exactly, one shared chunk overflowing into the next,
  // and sizes above half a chunk (a mapping of their own).
  for (size_t n : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(4097), size_t(1) << 20,
                   (size_t(3) << 20) - 3, size_t(5) << 20, size_t(2) << 20, size_t(0), size_t(777)}) {
    uint8_t* p = arena.allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % PageArena::kAlign, 0u) << n;
    blocks.push_back({p, n});
  }
  std::vector<Block> sorted = blocks;
  std::sort(sorted.begin(), sorted.end(), [](const Block& a, const Block& b) { return a.p < b.p; });
  for (size_t i = 1; i < sorted.size(); ++i) EXPECT_GE(sorted[i].p, sorted[i - 1].p + sorted[i - 1].n);
  fill_and_check(blocks);
  EXPECT_EQ(arena.allocations(), blocks.size());
  EXPECT_EQ(arena.mapped_bytes() % PageArena::kHugePage, 0u);
}

TEST(PageArena, LargeAllocationsStartOnHugePageBoundaries) {
  PageArena arena(size_t(2) << 20);
  for (size_t n : {size_t(1) << 20 | 1, size_t(3) << 20, size_t(7) << 20}) {
    uint8_t* p = arena.allocate(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % PageArena::kHugePage, 0u) << n;
  }
  // Shared chunks start on a boundary too: the first small allocation of a fresh arena.
  PageArena small;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.allocate(100)) % PageArena::kHugePage, 0u);
}

TEST(PageArena, MovesKeepTheMemory) {
  PageArena a(size_t(2) << 20);
  uint8_t* p = a.allocate(1000);
  uint8_t* q = a.allocate(size_t(3) << 20);
  std::fill(p, p + 1000, 0x5A);
  std::fill(q, q + (size_t(3) << 20), 0xA5);
  const size_t mapped = a.mapped_bytes();
  PageArena b(std::move(a));
  EXPECT_EQ(a.mapped_bytes(), 0u);
  EXPECT_EQ(b.mapped_bytes(), mapped);
  EXPECT_EQ(p[999], 0x5A);
  EXPECT_EQ(q[(size_t(3) << 20) - 1], 0xA5);
  PageArena c;
  c.allocate(10);
  c = std::move(b);  // c's own mapping is released, b's memory now belongs to c
  EXPECT_EQ(c.mapped_bytes(), mapped);
  EXPECT_EQ(p[0], 0x5A);
  // The moved-from arena is usable again.
  uint8_t* r = a.allocate(64);
  r[63] = 1;
  EXPECT_EQ(a.allocations(), 1u);
}

TEST(PageArena, ImpossibleSizeIsBadAlloc) {
  PageArena arena;
  EXPECT_THROW(arena.allocate(~size_t(0) - 10), std::bad_alloc);
  EXPECT_THROW(arena.allocate(size_t(1) << 63), std::bad_alloc);
  EXPECT_NE(arena.allocate(16), nullptr);  // still works after the failures
}

// The VmFlags line of the mapping holding `p` in /proc/self/smaps ("" when not found).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find(':') == std::string::npos || line.find('-') < line.find(' ')) {
      if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
        inside = addr >= lo && addr < hi;
        continue;
      }
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(PageArena, AdvisedForHugePages) {
  struct stat st;
  if (::stat("/sys/kernel/mm/transparent_hugepage", &st) != 0)
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  PageArena arena;
  uint8_t* p = arena.allocate(size_t(5) << 20);
  p[0] = 1;
  const std::string flags = vm_flags_of(p);
  ASSERT_FALSE(flags.empty()) << "no mapping for the allocation in /proc/self/smaps";
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;  // hg: MADV_HUGEPAGE
}

}  // namespace
}  // namespace edgellm::model
