#include "runtime/prompt_cache.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/checksum.h"
#include "runtime/session_file.h"
#include "util/error.h"

namespace edgellm::runtime {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".kvstate";

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

DiskPromptCache::DiskPromptCache(const Engine& engine, model::KvTypes types, PromptCacheOptions opts)
    : engine_(engine), types_(types), opts_(std::move(opts)) {
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (!fs::is_directory(opts_.dir, ec))
    throw Error("prompt cache folder " + opts_.dir + " cannot be created" + (ec ? ": " + ec.message() : ""));
  for (const auto& de : fs::directory_iterator(opts_.dir, ec)) {
    if (!de.is_regular_file() || de.path().extension() != kSuffix) continue;
    try {
      SavedHead head = peek_saved_state(engine_, types_, de.path().string());
      entries_.push_back({de.path().string(), std::move(head.tokens), std::move(head.adapters), 0});
    } catch (const Error&) {
      // Another model's or cache type's entry, or a damaged one: not ours to use or delete.
    }
  }
}

size_t DiskPromptCache::load_prefix(const std::vector<int32_t>& prompt, const std::string& adapters, size_t have,
                                    size_t limit, model::KvCache& cache, std::vector<int32_t>& tokens) {
  Entry* best = nullptr;
  size_t best_len = have;
  for (auto& e : entries_) {
    if (e.adapters != adapters) continue;
    const size_t len = std::min(common_prefix(e.tokens, prompt), limit);
    if (len > best_len) best = &e, best_len = len;
  }
  if (!best) return 0;
  try {
    restore_kv_state(engine_, cache, tokens, best->path, nullptr, adapters);
  } catch (const Error& e) {
    // Its head matched this model and cache, so the file is ours and damaged: delete it.
    std::fprintf(stderr, "prompt cache: dropping %s: %s\n", best->path.c_str(), e.what());
    std::error_code ec;
    fs::remove(best->path, ec);
    entries_.erase(entries_.begin() + (best - entries_.data()));
    return 0;
  }
  cache.truncate(static_cast<int32_t>(best_len));
  tokens.resize(best_len);
  best->last_used = ++clock_;
  ++hits_;
  return best_len;
}

void DiskPromptCache::store(const model::KvCache& cache, const std::vector<int32_t>& tokens,
                            const std::string& adapters) {
  if (tokens.size() < static_cast<size_t>(opts_.min_tokens)) return;
  for (const auto& e : entries_)
    if (e.adapters == adapters && common_prefix(e.tokens, tokens) == tokens.size()) return;
  io::StreamChecksum sum;
  sum.update(tokens.data(), tokens.size() * sizeof(int32_t));
  sum.update(adapters.data(), adapters.size());
  char name[40];
  std::snprintf(name, sizeof name, "%016llx%s", static_cast<unsigned long long>(sum.digest()), kSuffix);
  const std::string path = (fs::path(opts_.dir) / name).string();
  try {
    save_kv_state(engine_, cache, tokens, path, {}, adapters);
  } catch (const Error& e) {
    std::fprintf(stderr, "prompt cache: not stored: %s\n", e.what());
    return;
  }
  // An entry this one extends is now redundant: every prompt it served, this one serves.
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->adapters == adapters && it->path != path && common_prefix(it->tokens, tokens) == it->tokens.size()) {
      std::error_code ec;
      fs::remove(it->path, ec);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  entries_.push_back({path, tokens, adapters, ++clock_});
  evict();
}

void DiskPromptCache::evict() {
  while (entries_.size() > opts_.max_entries) {
    auto lru = std::min_element(entries_.begin(), entries_.end(),
                                [](const Entry& a, const Entry& b) { return a.last_used < b.last_used; });
    std::error_code ec;
    fs::remove(lru->path, ec);
    entries_.erase(lru);
  }
}

}  // namespace edgellm::runtime
