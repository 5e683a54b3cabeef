// Session::save_state / load_state: a conversation's tokens and KV rows, so an app can put a
// conversation away and resume it without running its prompt again.
//
// Layout (little-endian host order; the state is for the same machine and model):
//   "EDGELLMS" u32 version, u32 n_layer, u32 kv_dim, u32 k_type, u32 v_type, u32 n_vocab,
//   u64 model file size, u32 n_tokens, i32 tokens[n_tokens],
//   then per layer: keys of positions [0, n_tokens), values of the same positions.
#include <array>
#include <cstring>
#include <istream>
#include <ostream>

#include "runtime/engine.h"
#include "util/error.h"

namespace edgellm::runtime {

namespace {

constexpr std::array<char, 8> kMagic{'E', 'D', 'G', 'E', 'L', 'L', 'M', 'S'};
constexpr uint32_t kVersion = 1;

struct Header {
  uint32_t version, n_layer, kv_dim, k_type, v_type, n_vocab;
  uint64_t file_size;
  uint32_t n_tokens;
};

template <class T>
void put(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

void read_exact(std::istream& in, void* dst, size_t n, const char* what) {
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n)
    throw InvalidArgument(std::string("session state is truncated (in ") + what + ")");
}

Header expected_header(const Engine& e, const model::KvCache& cache, uint32_t n_tokens) {
  return Header{kVersion, static_cast<uint32_t>(e.config().n_layer), static_cast<uint32_t>(cache.kv_dim()),
                static_cast<uint32_t>(cache.types().k), static_cast<uint32_t>(cache.types().v),
                static_cast<uint32_t>(e.config().n_vocab), e.model().file().file_size(), n_tokens};
}

}  // namespace

void Session::save_state(std::ostream& out) const {
  const auto n = static_cast<uint32_t>(tokens_.size());
  const Header h = expected_header(engine_, cache_, n);
  out.write(kMagic.data(), kMagic.size());
  put(out, h.version), put(out, h.n_layer), put(out, h.kv_dim), put(out, h.k_type), put(out, h.v_type);
  put(out, h.n_vocab), put(out, h.file_size), put(out, h.n_tokens);
  out.write(reinterpret_cast<const char*>(tokens_.data()), static_cast<std::streamsize>(n * sizeof(int32_t)));
  for (int32_t l = 0; l < engine_.config().n_layer; ++l) {
    if (n == 0) break;
    out.write(reinterpret_cast<const char*>(cache_.k(l, 0)), static_cast<std::streamsize>(n * cache_.k_row_bytes()));
    out.write(reinterpret_cast<const char*>(cache_.v(l, 0)), static_cast<std::streamsize>(n * cache_.v_row_bytes()));
  }
}

void Session::load_state(std::istream& in) {
  reset();
  try {
    std::array<char, 8> magic{};
    read_exact(in, magic.data(), magic.size(), "the header");
    if (magic != kMagic) throw InvalidArgument("not an edgellm session state (bad magic)");
    Header h{};
    read_exact(in, &h.version, 4, "the header");
    if (h.version != kVersion)
      throw InvalidArgument("session state version " + std::to_string(h.version) + "; this build reads " +
                            std::to_string(kVersion));
    read_exact(in, &h.n_layer, 4, "the header");
    read_exact(in, &h.kv_dim, 4, "the header");
    read_exact(in, &h.k_type, 4, "the header");
    read_exact(in, &h.v_type, 4, "the header");
    read_exact(in, &h.n_vocab, 4, "the header");
    read_exact(in, &h.file_size, 8, "the header");
    read_exact(in, &h.n_tokens, 4, "the header");
    const Header want = expected_header(engine_, cache_, h.n_tokens);
    if (h.n_layer != want.n_layer || h.kv_dim != want.kv_dim || h.n_vocab != want.n_vocab ||
        h.file_size != want.file_size)
      throw InvalidArgument("session state was saved from another model");
    if (h.k_type != want.k_type || h.v_type != want.v_type)
      throw InvalidArgument("session state has other KV cache types than this session");
    if (h.n_tokens > static_cast<uint32_t>(n_ctx()))
      throw InvalidArgument("session state holds " + std::to_string(h.n_tokens) + " tokens; the context holds " +
                            std::to_string(n_ctx()));
    std::vector<int32_t> toks(h.n_tokens);
    read_exact(in, toks.data(), toks.size() * sizeof(int32_t), "the tokens");
    for (int32_t t : toks)
      if (t < 0 || t >= engine_.config().n_vocab) throw InvalidArgument("session state holds a bad token id");
    for (int32_t l = 0; l < engine_.config().n_layer && h.n_tokens > 0; ++l) {
      read_exact(in, cache_.k(l, 0), h.n_tokens * cache_.k_row_bytes(), "the keys");
      read_exact(in, cache_.v(l, 0), h.n_tokens * cache_.v_row_bytes(), "the values");
    }
    if (in.peek() != std::char_traits<char>::eof()) throw InvalidArgument("session state has trailing bytes");
    cache_.set_size(static_cast<int32_t>(h.n_tokens));
    tokens_ = std::move(toks);
  } catch (...) {
    reset();
    throw;
  }
}

}  // namespace edgellm::runtime
