#include "cli/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace edgellm::cli::ppl {
namespace {

constexpr char kMagic[8] = {'E', 'D', 'G', 'E', 'K', 'L', 'D', '1'};

template <typename T>
void put(std::ofstream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
void get_n(std::ifstream& in, T* v, size_t n, const std::string& path) {
  in.read(reinterpret_cast<char*>(v), static_cast<std::streamsize>(n * sizeof(T)));
  if (!in) throw InvalidArgument("KL-divergence base file " + path + " is truncated");
}

}  // namespace

Chunks make_chunks(const std::vector<int32_t>& text_ids, int32_t n_ctx, int64_t max_chunks, Protocol protocol,
                   int32_t bos) {
  if (protocol == Protocol::LlamaCpp && n_ctx < 3)
    throw InvalidArgument("-c must be at least 3 (the second half of each chunk is scored; --all-tokens allows 2)");
  if (n_ctx < 2) throw InvalidArgument("-c must be at least 2 for perplexity");
  Chunks c;
  c.n_ctx = n_ctx;
  c.first = protocol == Protocol::LlamaCpp ? n_ctx / 2 : 0;
  const size_t lead = protocol == Protocol::LlamaCpp && bos >= 0 ? 1 : 0;
  int64_t n = static_cast<int64_t>((text_ids.size() + lead) / static_cast<size_t>(n_ctx));
  if (max_chunks >= 0) n = std::min(n, max_chunks);
  c.tokens.reserve(static_cast<size_t>(n * n_ctx));
  if (lead && n > 0) c.tokens.push_back(bos);
  for (size_t i = 0; c.tokens.size() < static_cast<size_t>(n * n_ctx); ++i) c.tokens.push_back(text_ids[i]);
  if (bos >= 0)
    for (int64_t k = 0; k < n; ++k) c.tokens[static_cast<size_t>(k * n_ctx)] = bos;
  return c;
}

void log_softmax(const float* row, int32_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double mx = row[0];
  for (int32_t v = 1; v < n; ++v) mx = std::max<double>(mx, row[v]);
  double sum = 0;
  for (int32_t v = 0; v < n; ++v) sum += std::exp(row[v] - mx);
  const double shift = mx + std::log(sum);
  for (int32_t v = 0; v < n; ++v) out[static_cast<size_t>(v)] = row[v] - shift;
}

BaseWriter::BaseWriter(const std::string& path, const Chunks& chunks, int32_t n_vocab, int32_t top_k)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc), n_vocab_(n_vocab), top_k_(top_k) {
  if (!out_) throw Error("cannot write " + path);
  if (top_k < 0 || top_k > n_vocab)
    throw InvalidArgument("--kl-top-k must be in 0.." + std::to_string(n_vocab) + " (0 = the full distribution)");
  out_.write(kMagic, sizeof(kMagic));
  put(out_, chunks.n_ctx);
  put(out_, n_vocab);
  put(out_, chunks.first);
  put(out_, top_k);
  put(out_, chunks.n_chunks());
  out_.write(reinterpret_cast<const char*>(chunks.tokens.data()),
             static_cast<std::streamsize>(chunks.tokens.size() * sizeof(int32_t)));
  order_.resize(static_cast<size_t>(n_vocab));
}

void BaseWriter::add(const std::vector<double>& logp, int32_t next) {
  put(out_, static_cast<float>(logp[static_cast<size_t>(next)]));
  if (top_k_ == 0) {
    for (double v : logp) put(out_, static_cast<float>(v));
  } else {
    for (int32_t v = 0; v < n_vocab_; ++v) order_[static_cast<size_t>(v)] = v;
    std::partial_sort(order_.begin(), order_.begin() + top_k_, order_.end(), [&](int32_t a, int32_t b) {
      return logp[static_cast<size_t>(a)] > logp[static_cast<size_t>(b)] ||
             (logp[static_cast<size_t>(a)] == logp[static_cast<size_t>(b)] && a < b);
    });
    out_.write(reinterpret_cast<const char*>(order_.data()), static_cast<std::streamsize>(top_k_ * sizeof(int32_t)));
    for (int32_t i = 0; i < top_k_; ++i) put(out_, static_cast<float>(logp[static_cast<size_t>(order_[i])]));
  }
  if (!out_) throw Error("write failed: " + path_);
}

void BaseWriter::close() {
  out_.close();
  if (!out_) throw Error("write failed: " + path_);
}

BaseReader::BaseReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw InvalidArgument("cannot open KL-divergence base file " + path);
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("KL-divergence base file " + path + ": " + why +
                           " (write one with --kl-divergence-base FILE without --kl-divergence)");
  };
  char magic[sizeof(kMagic)] = {};
  in_.read(magic, sizeof(magic));
  if (!in_ || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) throw bad("not a base file");
  int32_t hdr[4];
  int64_t n_chunks = 0;
  get_n(in_, hdr, 4, path);
  get_n(in_, &n_chunks, 1, path);
  chunks_.n_ctx = hdr[0];
  n_vocab_ = hdr[1];
  chunks_.first = hdr[2];
  top_k_ = hdr[3];
  if (chunks_.n_ctx < 2 || chunks_.n_ctx > (1 << 24) || n_vocab_ < 1 || n_vocab_ > (1 << 24) || chunks_.first < 0 ||
      chunks_.first > chunks_.n_ctx - 2 || top_k_ < 0 || top_k_ > n_vocab_ || n_chunks < 1 || n_chunks > (1 << 24))
    throw bad("header out of range");
  const uint64_t per_pos = 4 + (top_k_ == 0 ? 4ull * static_cast<uint64_t>(n_vocab_) : 8ull * top_k_);
  const uint64_t n_tok = static_cast<uint64_t>(n_chunks) * static_cast<uint64_t>(chunks_.n_ctx);
  const uint64_t want = sizeof(kMagic) + 4 * 4 + 8 + 4 * n_tok +
                        static_cast<uint64_t>(n_chunks) * static_cast<uint64_t>(chunks_.scored_per_chunk()) * per_pos;
  std::error_code ec;
  const uint64_t have = std::filesystem::file_size(path, ec);
  if (ec || have != want)
    throw bad("size " + std::to_string(have) + " bytes, expected " + std::to_string(want) + " (truncated or damaged)");
  chunks_.tokens.resize(n_tok);
  get_n(in_, chunks_.tokens.data(), n_tok, path);
  for (int32_t t : chunks_.tokens)
    if (t < 0 || t >= n_vocab_) throw bad("token id " + std::to_string(t) + " outside the vocabulary");
}

void BaseReader::next(BaseRecord& r) {
  get_n(in_, &r.logp_next, 1, path_);
  if (top_k_ == 0) {
    r.ids.clear();
    r.logp.resize(static_cast<size_t>(n_vocab_));
  } else {
    r.ids.resize(static_cast<size_t>(top_k_));
    r.logp.resize(static_cast<size_t>(top_k_));
    get_n(in_, r.ids.data(), r.ids.size(), path_);
    for (int32_t id : r.ids)
      if (id < 0 || id >= n_vocab_)
        throw InvalidArgument("KL-divergence base file " + path_ + ": token id " + std::to_string(id) +
                              " outside the vocabulary");
  }
  get_n(in_, r.logp.data(), r.logp.size(), path_);
}

PositionCompare compare_position(const BaseRecord& base, const std::vector<double>& logp) {
  const auto q_top = static_cast<int32_t>(std::max_element(logp.begin(), logp.end()) - logp.begin());
  double kl = 0;
  if (base.ids.empty()) {
    int32_t p_top = 0;
    for (size_t v = 0; v < base.logp.size(); ++v) {
      const double lp = base.logp[v];
      if (lp > base.logp[static_cast<size_t>(p_top)]) p_top = static_cast<int32_t>(v);
      kl += std::exp(lp) * (lp - logp[v]);
    }
    return {kl, p_top == q_top};
  }
  double p_sum = 0, q_sum = 0;
  for (size_t i = 0; i < base.ids.size(); ++i) {
    const double lp = base.logp[i], lq = logp[static_cast<size_t>(base.ids[i])];
    p_sum += std::exp(lp);
    q_sum += std::exp(lq);
    kl += std::exp(lp) * (lp - lq);
  }
  const double p_rest = 1 - p_sum, q_rest = std::max(1 - q_sum, 1e-30);
  if (p_rest > 0) kl += p_rest * std::log(p_rest / q_rest);
  return {kl, base.ids[0] == q_top};
}

}  // namespace edgellm::cli::ppl
