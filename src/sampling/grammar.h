#pragma once
// Byte-level context-free grammar and a nondeterministic pushdown matcher over it.
//
// A grammar is a set of rules; each rule has alternatives; each alternative is a sequence of
// byte classes (256-bit sets) and rule references. The matcher state is a small set of stacks
// (persistent linked lists in a node pool, so advancing shares tails and costs O(1) per stack).
// Every stack's top is a byte-class position; an empty stack means "document complete", kept
// as a flag. Grammars must not be left-recursive (checked by GrammarBuilder::build).
#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace edgellm::sampling {

using ByteSet = std::bitset<256>;

// A grammar (or a state of its matcher) needs more work or memory than the fixed budgets
// allow: too ambiguous, too large. A request-level error (the schema or pattern is at fault),
// so the server answers 400; during generation it ends that one request.
class GrammarLimitError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// The matcher's fixed budgets. Every advance is bounded by kMaxExpandWork node pushes and
// kMaxStacks parses alive after merging duplicates, whatever the grammar; callers add a work
// budget over many advances (Constraint: per trie walk) with set_work_limit.
struct MatcherLimits {
  static constexpr size_t kMaxStacks = 1024;          // parses alive after one byte
  static constexpr uint64_t kMaxExpandWork = 65536;   // node pushes + rule entries in one advance
  static constexpr int kMaxExpandDepth = 2000;        // nested rule entries without a byte (C++ stack)
};

struct Grammar {
  enum Kind : uint8_t { kBytes, kRef, kEnd };
  struct Elem {
    Kind kind;
    int32_t arg;  // byte-set index (kBytes) or rule index (kRef)
  };
  std::vector<Elem> elems;                    // all alternatives, each terminated by kEnd
  std::vector<std::vector<int32_t>> alts;     // per rule: start index of each alternative
  std::vector<ByteSet> sets;
  std::vector<std::string> rule_names;        // for error messages and debugging
  int32_t root = 0;

  // Rules whose alternatives all start with pairwise-disjoint byte classes (e.g. one JSON
  // string character: ASCII | each UTF-8 lead | escape) are entered lazily: the matcher keeps
  // one "choice" frame instead of a stack per alternative, and picks the alternative by the
  // next byte. choice[rule] indexes choice_alt/choice_first, or is -1 (rules added to a copied
  // Grammar past choice.size() are simply not lazy).
  std::vector<int32_t> choice;
  std::vector<std::array<int32_t, 256>> choice_alt;  // byte -> alternative start, or -1
  std::vector<ByteSet> choice_first;                 // union of the first byte classes
};

// Builds a Grammar. Symbols are encoded as ints: >= 0 byte-set index, < 0 rule reference.
class GrammarBuilder {
 public:
  using Seq = std::vector<int32_t>;
  static int32_t ref(int32_t rule) { return -1 - rule; }

  int32_t set(const ByteSet& s);             // deduplicated byte class
  int32_t byte(uint8_t b);
  int32_t range(uint8_t lo, uint8_t hi);
  Seq literal(std::string_view text);         // one symbol per byte
  int32_t new_rule(std::string name);         // declared now, defined later (for recursion)
  void define(int32_t rule, std::vector<Seq> alts);
  int32_t rule(std::string name, std::vector<Seq> alts);  // new_rule + define
  // x repeated min..max times (max < 0: unbounded); returns a rule.
  int32_t repeat(int32_t sym, int min, int max, const std::string& name);
  size_t size() const { return total_syms_; }

  // Checks every rule is defined, not left-recursive, and derives some finite string.
  std::shared_ptr<const Grammar> build(int32_t root);

 private:
  std::vector<bool> fixpoint(const std::function<bool(int32_t)>& set_ok) const;

  std::vector<ByteSet> sets_;
  std::vector<std::string> names_;
  std::vector<std::vector<Seq>> rules_;
  std::vector<bool> defined_;
  size_t total_syms_ = 0;
};

// Matcher state over a shared node pool. A State is a list of stack-top node ids plus the
// "complete" flag. The pool only grows; callers truncate it to drop scratch states.
class GrammarMatcher {
 public:
  struct State {
    std::vector<int32_t> stacks;
    bool complete = false;
    bool dead() const { return stacks.empty() && !complete; }
  };

  explicit GrammarMatcher(std::shared_ptr<const Grammar> g);
  State initial();
  // Consumes one byte; out is cleared first. A byte that completes nothing leaves out dead.
  void advance(const int32_t* stacks, size_t n, uint8_t b, State& out);
  void advance(const State& in, uint8_t b, State& out) { advance(in.stacks.data(), in.stacks.size(), b, out); }
  // Bytes any stack can take next (union of the top byte classes).
  ByteSet next_bytes(const State& s) const;
  const Grammar& grammar() const { return *g_; }

  size_t pool_size() const { return nodes_.size(); }
  void truncate_pool(size_t n) { nodes_.resize(n); }
  // Work counter (node pushes, rule entries, duplicate comparisons) across advances; beyond
  // the limit an advance throws GrammarLimitError naming `what`. Unlimited by default.
  void set_work_limit(uint64_t limit, std::string what) { work_ = 0; work_limit_ = limit; work_what_ = std::move(what); }
  void clear_work_limit() { work_ = 0; work_limit_ = UINT64_MAX; }
  uint64_t work() const { return work_; }
  // Copies the stacks of s into a fresh pool (drops garbage left by earlier steps).
  void compact(State& s);

 private:
  struct Node {
    int32_t pos;     // element index, or -1 - rule for a lazy choice frame (stack tops only)
    int32_t parent;  // node id or -1
    uint32_t hash;   // of the whole stack (pos and the parents' pos), so merging is linear
  };
  void expand(int32_t pos, int32_t parent, State& out, int depth);
  int32_t push(int32_t pos, int32_t parent);
  bool same_stack(int32_t a, int32_t b) const;
  void dedupe(State& s);
  void charge(uint64_t n);

  std::shared_ptr<const Grammar> g_;
  std::vector<Node> nodes_;
  uint64_t work_ = 0, work_limit_ = UINT64_MAX;
  uint64_t advance_work_ = 0;  // work of the current advance (bounded by kMaxExpandWork)
  std::string work_what_;
};

}  // namespace edgellm::sampling
