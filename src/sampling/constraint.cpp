#include "sampling/constraint.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "util/error.h"

namespace edgellm::sampling {
namespace {
// One parse alive costs ~6 steps per trie node (SmolLM2: 0.6M steps for 100k nodes, ~1.5 ms),
// so this allows ~10 parses over the whole vocabulary: ~15 ms per token on a 49k vocabulary,
// ~100 ms on 262k at most, whatever the grammar.
constexpr uint64_t kWorkPerTrieNode = 64;
constexpr uint64_t kMinWalkWork = 1'000'000;
}  // namespace

TokenTrie::TokenTrie(const std::vector<std::string>& pieces, const std::vector<int32_t>& eog)
    : n_vocab_(static_cast<int32_t>(pieces.size())), pieces_(pieces), eog_(eog) {
  if (pieces.empty()) throw InvalidArgument("token trie: empty vocabulary");
  for (int32_t id : eog)
    if (id < 0 || id >= n_vocab_) throw InvalidArgument("token trie: end-of-generation id " + std::to_string(id) +
                                                        " outside vocabulary of " + std::to_string(n_vocab_));
  std::vector<int32_t> order;
  for (int32_t id = 0; id < n_vocab_; ++id) {
    const auto& p = pieces_[static_cast<size_t>(id)];
    if (p.size() > std::numeric_limits<uint16_t>::max())
      throw InvalidArgument("token trie: token " + std::to_string(id) + " is longer than 65535 bytes");
    if (!p.empty() && std::find(eog.begin(), eog.end(), id) == eog.end()) order.push_back(id);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)];
  });

  // Sorted insertion creates nodes in preorder; `path` holds the nodes of the previous piece.
  byte_.push_back(0);
  depth_.push_back(0);
  end_.push_back(0);
  std::vector<int32_t> path = {0};
  std::vector<std::pair<int32_t, int32_t>> node_tok;  // (node, id), node-ascending by construction
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& p = pieces_[static_cast<size_t>(id)];
    size_t lcp = 0;
    if (prev) {
      const size_t lim = std::min(prev->size(), p.size());
      while (lcp < lim && (*prev)[lcp] == p[lcp]) ++lcp;
    }
    while (path.size() > lcp + 1) {
      end_[static_cast<size_t>(path.back())] = static_cast<int32_t>(byte_.size());
      path.pop_back();
    }
    for (size_t k = lcp; k < p.size(); ++k) {
      byte_.push_back(static_cast<uint8_t>(p[k]));
      depth_.push_back(static_cast<uint16_t>(k + 1));
      end_.push_back(0);
      path.push_back(static_cast<int32_t>(byte_.size() - 1));
    }
    node_tok.emplace_back(path.back(), id);
    prev = &p;
  }
  while (!path.empty()) {
    end_[static_cast<size_t>(path.back())] = static_cast<int32_t>(byte_.size());
    path.pop_back();
  }
  tok_begin_.assign(byte_.size() + 1, 0);
  for (const auto& [node, id] : node_tok) ++tok_begin_[static_cast<size_t>(node) + 1];
  std::partial_sum(tok_begin_.begin(), tok_begin_.end(), tok_begin_.begin());
  tok_ids_.resize(node_tok.size());
  std::vector<int32_t> fill(tok_begin_.begin(), tok_begin_.end() - 1);
  for (const auto& [node, id] : node_tok) tok_ids_[static_cast<size_t>(fill[static_cast<size_t>(node)]++)] = id;
}

Constraint::Constraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> vocab)
    : vocab_(std::move(vocab)), matcher_(std::move(grammar)) {
  if (!vocab_) throw InvalidArgument("constraint: null vocabulary");
  reset();
}

void Constraint::reset() {
  matcher_.truncate_pool(0);
  state_ = matcher_.initial();
  finished_ = false;
  allowed_valid_ = false;
}

uint64_t Constraint::walk_budget() const {
  return std::max<uint64_t>(kMinWalkWork, kWorkPerTrieNode * vocab_->n_nodes());
}

void Constraint::probe() {
  allowed_tokens(allowed_);
  allowed_valid_ = true;
  // Greedy walk (itself within one walk's budget): at each byte keep the continuation with
  // the most parses alive; the masks at some of its states are then computed as at run time.
  const size_t mark = matcher_.pool_size();
  const GrammarMatcher::State saved = state_;
  std::vector<GrammarMatcher::State> probes;
  try {
    {
      matcher_.set_work_limit(walk_budget(), "probing the schema");
      GrammarMatcher::State cur = state_, next, best;
      size_t most_parses = 2;
      for (int step = 1; step <= 128 && !cur.stacks.empty(); ++step) {
        const ByteSet bytes = matcher_.next_bytes(cur);
        bool found = false;
        for (int b = 0; b < 256; ++b) {
          if (!bytes.test(static_cast<size_t>(b))) continue;
          matcher_.advance(cur, static_cast<uint8_t>(b), next);
          if (!next.dead() && (!found || next.stacks.size() > best.stacks.size())) {
            std::swap(best, next);
            found = true;
          }
        }
        if (!found) break;
        std::swap(cur, best);
        // One or two parses cost a few steps per trie node: only states more ambiguous than
        // any checked before are checked (a steady 3 parses costs one mask, not twelve).
        const bool sampled = (step & (step - 1)) == 0 || step % 16 == 0;
        if (sampled && cur.stacks.size() > most_parses) {
          probes.push_back(cur);
          most_parses = cur.stacks.size();
        }
      }
      matcher_.clear_work_limit();
    }
    std::vector<uint8_t> scratch;
    for (const auto& p : probes) {
      state_ = p;
      allowed_tokens(scratch);
    }
  } catch (...) {
    matcher_.clear_work_limit();
    state_ = saved;
    matcher_.truncate_pool(mark);
    throw;
  }
  state_ = saved;
  matcher_.truncate_pool(mark);
}

void Constraint::allowed_tokens(std::vector<uint8_t>& allowed) {
  const TokenTrie& t = *vocab_;
  allowed.assign(static_cast<size_t>(t.n_vocab()), 0);
  if (finished_ || state_.complete)
    for (int32_t id : t.eog()) allowed[static_cast<size_t>(id)] = 1;
  if (finished_ || state_.stacks.empty()) return;

  const size_t mark = matcher_.pool_size();  // every node made by the walk is scratch
  matcher_.set_work_limit(walk_budget(), "one token's mask");
  struct Unlimit {
    GrammarMatcher& m;
    ~Unlimit() { m.clear_work_limit(); }
  } unlimit{matcher_};
  if (per_depth_.empty()) {
    uint16_t max_depth = 0;
    for (uint16_t d : t.depth_) max_depth = std::max(max_depth, d);
    per_depth_.resize(static_cast<size_t>(max_depth) + 1);
  }
  per_depth_[0] = state_;
  const ByteSet first = matcher_.next_bytes(state_);
  const int32_t n = static_cast<int32_t>(t.n_nodes());
  for (int32_t i = 1; i < n;) {
    const size_t d = t.depth_[static_cast<size_t>(i)];
    if (d == 1 && !first.test(t.byte_[static_cast<size_t>(i)])) {  // cheap root-level pruning
      i = t.end_[static_cast<size_t>(i)];
      continue;
    }
    GrammarMatcher::State& cur = per_depth_[d];
    matcher_.advance(per_depth_[d - 1], t.byte_[static_cast<size_t>(i)], cur);
    if (!cur.dead())
      for (int32_t k = t.tok_begin_[static_cast<size_t>(i)]; k < t.tok_begin_[static_cast<size_t>(i) + 1]; ++k)
        allowed[static_cast<size_t>(t.tok_ids_[static_cast<size_t>(k)])] = 1;
    i = cur.stacks.empty() ? t.end_[static_cast<size_t>(i)] : i + 1;
  }
  last_walk_work_ = matcher_.work();
  matcher_.truncate_pool(mark);
}

void Constraint::apply(float* logits) {
  if (!logits) throw InvalidArgument("constraint: logits pointer is null");
  if (!allowed_valid_) allowed_tokens(allowed_);
  allowed_valid_ = false;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < allowed_.size(); ++i)
    if (!allowed_[i]) logits[i] = ninf;
}

bool Constraint::walk_piece(const std::string& bytes, GrammarMatcher::State& out) {
  GrammarMatcher::State tmp;
  out = state_;
  for (char c : bytes) {
    if (out.stacks.empty()) return false;
    matcher_.advance(out, static_cast<uint8_t>(c), tmp);
    std::swap(out, tmp);
  }
  return !out.dead();
}

bool Constraint::allows(int32_t token) {
  const TokenTrie& t = *vocab_;
  if (token < 0 || token >= t.n_vocab()) return false;
  const bool eog = std::find(t.eog().begin(), t.eog().end(), token) != t.eog().end();
  if (eog) return state_.complete || finished_;
  if (finished_ || t.piece(token).empty()) return false;
  const size_t mark = matcher_.pool_size();
  GrammarMatcher::State s;
  const bool ok = walk_piece(t.piece(token), s);
  matcher_.truncate_pool(mark);
  return ok;
}

void Constraint::accept(int32_t token) {
  const TokenTrie& t = *vocab_;
  allowed_valid_ = false;
  if (token < 0 || token >= t.n_vocab())
    throw InvalidArgument("constraint: token id " + std::to_string(token) + " outside vocabulary");
  if (std::find(t.eog().begin(), t.eog().end(), token) != t.eog().end()) {
    if (!state_.complete && !finished_)
      throw InvalidArgument("constraint: end of generation before the JSON document is complete");
    finished_ = true;
    return;
  }
  if (finished_) throw InvalidArgument("constraint: token after end of generation");
  allowed_valid_ = false;
  if (t.piece(token).empty()) throw InvalidArgument("constraint: control token " + std::to_string(token) + " is not allowed");
  accept_bytes(t.piece(token));
}

void Constraint::accept_bytes(const std::string& bytes) {
  GrammarMatcher::State s;
  if (!walk_piece(bytes, s)) throw InvalidArgument("constraint: text '" + bytes + "' does not fit the grammar here");
  state_ = std::move(s);
  allowed_valid_ = false;
  if (matcher_.pool_size() > (1u << 20)) matcher_.compact(state_);
}

}  // namespace edgellm::sampling
