#pragma once
// The scoring protocols of `edgellm perplexity` and the file of a saved base run that
// KL-divergence compares against (cmd_perplexity.cpp runs them).
//
// Protocols. Both cut the token stream into consecutive non-overlapping chunks of n_ctx
// tokens (the last partial chunk is dropped), evaluate each from an empty cache and let
// position j predict token j+1; when the tokenizer asks for BOS the first token of every chunk
// is replaced by BOS. They differ in which positions count:
// - LlamaCpp (default), llama-perplexity's: the first n_ctx/2 positions of a chunk are context
//   only; positions n_ctx/2 .. n_ctx-2 are scored (n_ctx - 1 - n_ctx/2 predictions a chunk),
//   and with BOS the stream itself starts with BOS, so every scored token sees at least n_ctx/2
//   tokens before it and the figures compare with published llama.cpp ones.
// - AllTokens (--all-tokens, edgellm's earlier default): positions 0 .. n_ctx-2, no BOS in
//   front of the stream (only the substitution), so short contexts weigh in too.
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace edgellm::cli::ppl {

enum class Protocol { LlamaCpp, AllTokens };

struct Chunks {
  int32_t n_ctx = 0;
  int32_t first = 0;            // first scored position
  std::vector<int32_t> tokens;  // n_chunks * n_ctx, as evaluated (BOS substituted)
  int64_t n_chunks() const { return n_ctx > 0 ? static_cast<int64_t>(tokens.size()) / n_ctx : 0; }
  int32_t scored_per_chunk() const { return n_ctx - 1 - first; }
};

// text_ids: the text's tokens without BOS, special tokens not parsed. bos < 0: no BOS.
// max_chunks < 0: all. Throws InvalidArgument when not even one chunk fits.
Chunks make_chunks(const std::vector<int32_t>& text_ids, int32_t n_ctx, int64_t max_chunks, Protocol protocol,
                   int32_t bos);

// log-softmax of `row` (n values) in double precision into `out`.
void log_softmax(const float* row, int32_t n, std::vector<double>& out);

// A saved base run (--kl-divergence-base FILE), little-endian:
//   "EDGEKLD1", then int32 n_ctx, n_vocab, first, top_k, int64 n_chunks,
//   int32 tokens[n_chunks * n_ctx],
//   then per scored position (chunk by chunk, j = first .. n_ctx-2), the base's log-probs:
//     float logp of the actual next token;
//     top_k == 0: float logp[n_vocab] (the full distribution);
//     top_k > 0: int32 id[top_k], float logp[top_k], most probable first.
// With top_k > 0 the KL sums the base's top-k tokens exactly and lumps every other token
// into one bucket (p_rest = 1 - sum of the top-k probabilities, q_rest likewise under the
// compared model). Merging outcomes never increases KL, so this is a lower bound of the full
// KL that is exact as the base's tail mass vanishes; top_k = 0 gives the full KL at
// 4 * n_vocab bytes per position.
struct BaseRecord {
  float logp_next = 0;
  std::vector<int32_t> ids;  // empty when the record holds the full distribution
  std::vector<float> logp;
};

class BaseWriter {
 public:
  BaseWriter(const std::string& path, const Chunks& chunks, int32_t n_vocab, int32_t top_k);
  void add(const std::vector<double>& logp, int32_t next);
  void close();

 private:
  std::string path_;
  std::ofstream out_;
  int32_t n_vocab_, top_k_;
  std::vector<int32_t> order_;
};

class BaseReader {
 public:
  // Throws InvalidArgument naming the file for anything but a complete, consistent base file.
  explicit BaseReader(const std::string& path);
  const Chunks& chunks() const { return chunks_; }
  int32_t n_vocab() const { return n_vocab_; }
  int32_t top_k() const { return top_k_; }
  void next(BaseRecord& r);

 private:
  std::string path_;
  std::ifstream in_;
  Chunks chunks_;
  int32_t n_vocab_ = 0, top_k_ = 0;
};

// KL(base || model) at one position (see BaseReader) and whether the two agree on the most
// probable token. logp: the model's log-softmax.
struct PositionCompare {
  double kl;
  bool same_top1;
};
PositionCompare compare_position(const BaseRecord& base, const std::vector<double>& logp);

}  // namespace edgellm::cli::ppl
