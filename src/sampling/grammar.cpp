#include "sampling/grammar.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "util/error.h"

namespace edgellm::sampling {
namespace {
constexpr size_t kMaxGrammarSymbols = 2'000'000;  // keeps schemas with huge lengths bounded
constexpr size_t kMaxRules = 250'000;
constexpr size_t kMaxRuleName = 96;  // names embed schema paths; long ones would cost O(depth^2)
}  // namespace

// ---- builder ----

int32_t GrammarBuilder::set(const ByteSet& s) {
  for (size_t i = 0; i < sets_.size(); ++i)
    if (sets_[i] == s) return static_cast<int32_t>(i);
  sets_.push_back(s);
  return static_cast<int32_t>(sets_.size() - 1);
}

int32_t GrammarBuilder::byte(uint8_t b) {
  ByteSet s;
  s.set(b);
  return set(s);
}

int32_t GrammarBuilder::range(uint8_t lo, uint8_t hi) {
  ByteSet s;
  for (int c = lo; c <= hi; ++c) s.set(static_cast<size_t>(c));
  return set(s);
}

GrammarBuilder::Seq GrammarBuilder::literal(std::string_view text) {
  Seq out;
  for (char c : text) out.push_back(byte(static_cast<uint8_t>(c)));
  return out;
}

int32_t GrammarBuilder::new_rule(std::string name) {
  if (rules_.size() >= kMaxRules)
    throw GrammarLimitError("grammar: the schema needs more than " + std::to_string(kMaxRules) +
                            " grammar rules (reduce its size, maxLength/maxItems or {m,n} counts)");
  if (name.size() > kMaxRuleName) name = name.substr(0, kMaxRuleName / 2) + "..." + name.substr(name.size() - kMaxRuleName / 2);
  names_.push_back(std::move(name));
  rules_.emplace_back();
  defined_.push_back(false);
  return static_cast<int32_t>(rules_.size() - 1);
}

void GrammarBuilder::define(int32_t rule, std::vector<Seq> alts) {
  for (const auto& a : alts) total_syms_ += a.size() + 1;
  if (total_syms_ > kMaxGrammarSymbols)
    throw GrammarLimitError("grammar: schema expands to more than " + std::to_string(kMaxGrammarSymbols) +
                          " symbols (reduce maxLength/maxItems/minItems)");
  rules_[static_cast<size_t>(rule)] = std::move(alts);
  defined_[static_cast<size_t>(rule)] = true;
}

int32_t GrammarBuilder::rule(std::string name, std::vector<Seq> alts) {
  const int32_t r = new_rule(std::move(name));
  define(r, std::move(alts));
  return r;
}

int32_t GrammarBuilder::repeat(int32_t sym, int min, int max, const std::string& name) {
  if (min < 0) min = 0;
  Seq head(static_cast<size_t>(min), sym);
  if (max < 0) {
    const int32_t tail = new_rule(name + "-tail");
    define(tail, {{sym, ref(tail)}, {}});
    head.push_back(ref(tail));
    return rule(name, {head});
  }
  if (max < min) throw InvalidArgument("grammar: " + name + ": maximum " + std::to_string(max) +
                                       " is below minimum " + std::to_string(min));
  int32_t opt = -1;  // opt_k ::= sym opt_{k-1} | empty
  for (int k = 1; k <= max - min; ++k) {
    Seq more = {sym};
    if (opt >= 0) more.push_back(ref(opt));
    opt = rule(name + "-opt" + std::to_string(k), {more, {}});
  }
  if (opt >= 0) head.push_back(ref(opt));
  return rule(name, {head});
}

// Least fixpoint by worklist (linear in the grammar's size, whatever the rule order): a rule is
// marked once one alternative has only marked rules and byte sets accepted by set_ok.
std::vector<bool> GrammarBuilder::fixpoint(const std::function<bool(int32_t)>& set_ok) const {
  const size_t n = rules_.size();
  std::vector<bool> marked(n, false);
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> users(n);  // rule -> (rule, alt) using it
  std::vector<std::vector<uint32_t>> need(n);                         // unmarked symbols per alternative
  std::vector<uint32_t> work;
  for (size_t r = 0; r < n; ++r) {
    need[r].resize(rules_[r].size());
    for (size_t a = 0; a < rules_[r].size(); ++a) {
      uint32_t k = 0;
      for (int32_t s : rules_[r][a]) {
        if (s >= 0) {
          if (!set_ok(s)) k = UINT32_MAX / 2;  // never satisfiable
          continue;
        }
        users[static_cast<size_t>(-1 - s)].push_back({static_cast<uint32_t>(r), static_cast<uint32_t>(a)});
        ++k;
      }
      need[r][a] = k;
      if (k == 0 && !marked[r]) {
        marked[r] = true;
        work.push_back(static_cast<uint32_t>(r));
      }
    }
  }
  while (!work.empty()) {
    const uint32_t q = work.back();
    work.pop_back();
    for (const auto& [r, a] : users[q])
      if (--need[r][a] == 0 && !marked[r]) {
        marked[r] = true;
        work.push_back(r);
      }
  }
  return marked;
}

std::shared_ptr<const Grammar> GrammarBuilder::build(int32_t root) {
  const size_t n = rules_.size();
  for (size_t r = 0; r < n; ++r)
    if (!defined_[r]) throw Error("grammar: rule '" + names_[r] + "' referenced but never defined");

  // Nullable rules, then reject left recursion (a rule reachable from itself without consuming).
  const std::vector<bool> nullable = fixpoint([](int32_t) { return false; });
  std::vector<int> mark(n, 0);  // 0 new, 1 on path, 2 done
  struct Frame {
    size_t rule, alt = 0, sym = 0;
  };
  std::vector<Frame> path;  // explicit stack: rule chains may be as long as the grammar
  for (size_t start = 0; start < n; ++start) {
    if (mark[start] != 0) continue;
    mark[start] = 1;
    path.push_back({start});
    while (!path.empty()) {
      Frame& f = path.back();
      const auto& alts = rules_[f.rule];
      if (f.alt >= alts.size()) {
        mark[f.rule] = 2;
        path.pop_back();
        continue;
      }
      const Seq& a = alts[f.alt];
      if (f.sym >= a.size() || a[f.sym] >= 0) {  // alternative done, or it consumes a byte here
        ++f.alt;
        f.sym = 0;
        continue;
      }
      const size_t q = static_cast<size_t>(-1 - a[f.sym]);
      if (nullable[q]) ++f.sym;
      else f.sym = a.size();
      if (mark[q] == 1) throw InvalidArgument("grammar: schema is left-recursive through '" + names_[q] +
                                              "' (a $ref cycle that consumes no input)");
      if (mark[q] == 0) {
        mark[q] = 1;
        path.push_back({q});
      }
    }
  }

  // Productive rules (derive some finite string); alternatives using unproductive symbols are
  // dropped so the matcher can never walk into a dead end.
  const std::vector<bool> productive = fixpoint([&](int32_t s) { return sets_[static_cast<size_t>(s)].any(); });
  auto sym_ok = [&](int32_t s) { return s >= 0 ? sets_[static_cast<size_t>(s)].any() : productive[static_cast<size_t>(-1 - s)]; };
  if (!productive[static_cast<size_t>(root)])
    throw InvalidArgument("grammar: the schema admits no finite document (e.g. a required property whose schema "
                          "is unsatisfiable, or infinite recursion)");
  for (size_t r = 0; r < n; ++r)
    std::erase_if(rules_[r], [&](const Seq& a) { return !std::all_of(a.begin(), a.end(), sym_ok); });

  auto g = std::make_shared<Grammar>();
  g->sets = sets_;
  g->rule_names = names_;
  g->root = root;
  g->alts.resize(n);
  for (size_t r = 0; r < n; ++r) {
    for (const auto& a : rules_[r]) {
      g->alts[r].push_back(static_cast<int32_t>(g->elems.size()));
      for (int32_t s : a)
        g->elems.push_back(s >= 0 ? Grammar::Elem{Grammar::kBytes, s} : Grammar::Elem{Grammar::kRef, -1 - s});
      g->elems.push_back({Grammar::kEnd, 0});
    }
  }
  g->choice.assign(n, -1);
  for (size_t r = 0; r < n; ++r) {
    if (rules_[r].size() < 2) continue;
    ByteSet seen;
    std::array<int32_t, 256> table;
    table.fill(-1);
    bool ok = true;
    for (size_t a = 0; a < rules_[r].size() && ok; ++a) {
      const Seq& alt = rules_[r][a];
      if (alt.empty() || alt[0] < 0 || (sets_[static_cast<size_t>(alt[0])] & seen).any()) { ok = false; break; }
      const ByteSet& first = sets_[static_cast<size_t>(alt[0])];
      seen |= first;
      for (size_t b = 0; b < 256; ++b)
        if (first.test(b)) table[b] = g->alts[r][a];
    }
    if (!ok) continue;
    g->choice[r] = static_cast<int32_t>(g->choice_alt.size());
    g->choice_alt.push_back(table);
    g->choice_first.push_back(seen);
  }
  return g;
}

// ---- matcher ----

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
  if (!g_) throw InvalidArgument("grammar matcher: null grammar");
}

void GrammarMatcher::charge(uint64_t n) {
  advance_work_ += n;
  work_ += n;
  if (advance_work_ > MatcherLimits::kMaxExpandWork)
    throw GrammarLimitError("grammar: the schema is too ambiguous to match (one byte needs more than " +
                            std::to_string(MatcherLimits::kMaxExpandWork) + " matcher steps)");
  if (work_ > work_limit_)
    throw GrammarLimitError("grammar: the schema is too ambiguous to match (" + work_what_ + " needs more than " +
                            std::to_string(work_limit_) + " matcher steps)");
}

int32_t GrammarMatcher::push(int32_t pos, int32_t parent) {
  charge(1);
  uint64_t h = static_cast<uint32_t>(pos) * 0x9E3779B97F4A7C15ull;
  if (parent >= 0) h ^= (nodes_[static_cast<size_t>(parent)].hash + 0x632BE59Bull) * 0xC2B2AE3D27D4EB4Full;
  nodes_.push_back({pos, parent, static_cast<uint32_t>(h ^ (h >> 32))});
  return static_cast<int32_t>(nodes_.size() - 1);
}

GrammarMatcher::State GrammarMatcher::initial() {
  State s;
  advance_work_ = 0;
  for (int32_t a : g_->alts[static_cast<size_t>(g_->root)]) expand(a, -1, s, 0);
  dedupe(s);
  return s;
}

// Brings position `pos` (with return stack `parent`) to byte-class tops: enters rules, and on
// reaching the end of an alternative resumes the caller's continuation.
void GrammarMatcher::expand(int32_t pos, int32_t parent, State& out, int depth) {
  if (depth > MatcherLimits::kMaxExpandDepth)
    throw GrammarLimitError("grammar: the schema nests more than " + std::to_string(MatcherLimits::kMaxExpandDepth) +
                            " rules that consume nothing");
  charge(1);
  const Grammar::Elem e = g_->elems[static_cast<size_t>(pos)];
  switch (e.kind) {
    case Grammar::kBytes:
      out.stacks.push_back(push(pos, parent));
      return;
    case Grammar::kEnd:
      if (parent < 0) {
        out.complete = true;
      } else {
        const Node p = nodes_[static_cast<size_t>(parent)];
        if (g_->elems[static_cast<size_t>(p.pos)].kind == Grammar::kBytes) out.stacks.push_back(parent);
        else expand(p.pos, p.parent, out, depth + 1);
      }
      return;
    case Grammar::kRef: {
      const int32_t cont = pos + 1;
      // Tail call: a continuation that is just the end of the alternative needs no frame.
      const int32_t np = g_->elems[static_cast<size_t>(cont)].kind == Grammar::kEnd ? parent : push(cont, parent);
      const auto r = static_cast<size_t>(e.arg);
      if (r < g_->choice.size() && g_->choice[r] >= 0) {
        out.stacks.push_back(push(-1 - e.arg, np));  // lazy choice frame
        return;
      }
      for (int32_t a : g_->alts[r]) expand(a, np, out, depth + 1);
      return;
    }
  }
}

void GrammarMatcher::advance(const int32_t* stacks, size_t n, uint8_t b, State& out) {
  out.stacks.clear();
  out.complete = false;
  advance_work_ = 0;
  size_t matched = 0;
  for (size_t i = 0; i < n; ++i) {
    const Node nd = nodes_[static_cast<size_t>(stacks[i])];
    if (nd.pos < 0) {  // choice frame: the byte selects the alternative
      const int32_t c = g_->choice[static_cast<size_t>(-1 - nd.pos)];
      const int32_t a = g_->choice_alt[static_cast<size_t>(c)][b];
      if (a >= 0) {
        expand(a + 1, nd.parent, out, 0);
        ++matched;
      }
      continue;
    }
    const Grammar::Elem e = g_->elems[static_cast<size_t>(nd.pos)];
    if (g_->sets[static_cast<size_t>(e.arg)].test(b)) {
      expand(nd.pos + 1, nd.parent, out, 0);
      ++matched;
    }
  }
  // Duplicates need two parses meeting; one surviving parse can only duplicate through an
  // ambiguous rule, and those copies are merged on the next byte (when both match).
  if (matched > 1 && out.stacks.size() > 1) dedupe(out);
  else if (out.stacks.size() > MatcherLimits::kMaxStacks) dedupe(out);
}

ByteSet GrammarMatcher::next_bytes(const State& s) const {
  ByteSet u;
  for (int32_t id : s.stacks) {
    const int32_t pos = nodes_[static_cast<size_t>(id)].pos;
    if (pos < 0) u |= g_->choice_first[static_cast<size_t>(g_->choice[static_cast<size_t>(-1 - pos)])];
    else u |= g_->sets[static_cast<size_t>(g_->elems[static_cast<size_t>(pos)].arg)];
  }
  return u;
}

bool GrammarMatcher::same_stack(int32_t a, int32_t b) const {
  while (a != b) {
    if (a < 0 || b < 0) return false;
    const Node& x = nodes_[static_cast<size_t>(a)];
    const Node& y = nodes_[static_cast<size_t>(b)];
    if (x.pos != y.pos || x.hash != y.hash) return false;
    a = x.parent;
    b = y.parent;
  }
  return true;
}

void GrammarMatcher::dedupe(State& s) {
  // Stacks are compared only when their hashes (over the whole stack) agree, so merging costs
  // O(n log n) hash work plus a full comparison per true duplicate, never O(n^2) comparisons.
  const size_t n = s.stacks.size();
  auto hash_of = [&](int32_t id) { return nodes_[static_cast<size_t>(id)].hash; };
  std::vector<bool> drop(n, false);
  if (n <= 8) {
    for (size_t i = 1; i < n; ++i)
      for (size_t k = 0; k < i && !drop[i]; ++k)
        if (!drop[k] && hash_of(s.stacks[k]) == hash_of(s.stacks[i]) && same_stack(s.stacks[k], s.stacks[i]))
          drop[i] = true;
  } else {
    charge(n);
    std::vector<std::pair<uint32_t, uint32_t>> order(n);  // (hash, index): equal hashes adjacent
    for (size_t i = 0; i < n; ++i) order[i] = {hash_of(s.stacks[i]), static_cast<uint32_t>(i)};
    std::sort(order.begin(), order.end());
    for (size_t i = 0; i < n;) {
      size_t j = i + 1;
      while (j < n && order[j].first == order[i].first) ++j;
      for (size_t x = i + 1; x < j; ++x)  // run of equal hashes: almost always true duplicates
        for (size_t y = i; y < x; ++y) {
          charge(1);
          if (!drop[order[y].second] && same_stack(s.stacks[order[y].second], s.stacks[order[x].second])) {
            drop[order[x].second] = true;
            break;
          }
        }
      i = j;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i)
    if (!drop[i]) s.stacks[kept++] = s.stacks[i];
  s.stacks.resize(kept);
  if (kept > MatcherLimits::kMaxStacks)
    throw GrammarLimitError("grammar: the schema is too ambiguous to match (" + std::to_string(kept) +
                            " parses alive, the limit is " + std::to_string(MatcherLimits::kMaxStacks) + ")");
}

void GrammarMatcher::compact(State& s) {
  // Iterative (stacks may be as deep as the document is nested): copy each stack's chain of
  // not-yet-moved nodes, deepest first, so parents always exist before their children.
  std::vector<Node> fresh;
  std::unordered_map<int32_t, int32_t> moved;
  std::vector<int32_t> chain;
  for (int32_t& top : s.stacks) {
    chain.clear();
    for (int32_t id = top; id >= 0 && !moved.count(id); id = nodes_[static_cast<size_t>(id)].parent) chain.push_back(id);
    for (size_t k = chain.size(); k-- > 0;) {
      const Node nd = nodes_[static_cast<size_t>(chain[k])];
      const int32_t parent = nd.parent < 0 ? -1 : moved.at(nd.parent);
      fresh.push_back({nd.pos, parent, nd.hash});
      moved.emplace(chain[k], static_cast<int32_t>(fresh.size() - 1));
    }
    top = moved.at(top);
  }
  nodes_.swap(fresh);
}

}  // namespace edgellm::sampling
