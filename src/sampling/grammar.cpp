#include "sampling/grammar.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "util/error.h"

namespace edgellm::sampling {
namespace {
constexpr size_t kMaxGrammarSymbols = 4'000'000;  // keeps schemas with huge lengths bounded
constexpr size_t kMaxStacks = 4096;               // ambiguity guard
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
  names_.push_back(std::move(name));
  rules_.emplace_back();
  defined_.push_back(false);
  return static_cast<int32_t>(rules_.size() - 1);
}

void GrammarBuilder::define(int32_t rule, std::vector<Seq> alts) {
  for (const auto& a : alts) total_syms_ += a.size() + 1;
  if (total_syms_ > kMaxGrammarSymbols)
    throw InvalidArgument("grammar: schema expands to more than " + std::to_string(kMaxGrammarSymbols) +
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

std::shared_ptr<const Grammar> GrammarBuilder::build(int32_t root) {
  const size_t n = rules_.size();
  for (size_t r = 0; r < n; ++r)
    if (!defined_[r]) throw Error("grammar: rule '" + names_[r] + "' referenced but never defined");

  // Nullable rules, then reject left recursion (a rule reachable from itself without consuming).
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (const auto& a : rules_[r])
        if (std::all_of(a.begin(), a.end(), [&](int32_t s) { return s < 0 && nullable[static_cast<size_t>(-1 - s)]; })) {
          nullable[r] = true; changed = true; break;
        }
    }
  }
  std::vector<int> mark(n, 0);  // 0 new, 1 on path, 2 done
  std::function<void(size_t)> visit = [&](size_t r) {
    mark[r] = 1;
    for (const auto& a : rules_[r]) {
      for (int32_t s : a) {
        if (s >= 0) break;
        const size_t q = static_cast<size_t>(-1 - s);
        if (mark[q] == 1) throw InvalidArgument("grammar: schema is left-recursive through '" + names_[q] +
                                                "' (a $ref cycle that consumes no input)");
        if (mark[q] == 0) visit(q);
        if (!nullable[q]) break;
      }
    }
    mark[r] = 2;
  };
  for (size_t r = 0; r < n; ++r)
    if (mark[r] == 0) visit(r);

  // Productive rules (derive some finite string); alternatives using unproductive symbols are
  // dropped so the matcher can never walk into a dead end.
  std::vector<bool> productive(n, false);
  auto sym_ok = [&](int32_t s) { return s >= 0 ? sets_[static_cast<size_t>(s)].any() : productive[static_cast<size_t>(-1 - s)]; };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (productive[r]) continue;
      for (const auto& a : rules_[r])
        if (std::all_of(a.begin(), a.end(), sym_ok)) { productive[r] = true; changed = true; break; }
    }
  }
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

int32_t GrammarMatcher::push(int32_t pos, int32_t parent) {
  nodes_.push_back({pos, parent});
  return static_cast<int32_t>(nodes_.size() - 1);
}

GrammarMatcher::State GrammarMatcher::initial() {
  State s;
  for (int32_t a : g_->alts[static_cast<size_t>(g_->root)]) expand(a, -1, s, 0);
  dedupe(s);
  return s;
}

// Brings position `pos` (with return stack `parent`) to byte-class tops: enters rules, and on
// reaching the end of an alternative resumes the caller's continuation.
void GrammarMatcher::expand(int32_t pos, int32_t parent, State& out, int depth) {
  if (depth > 100000) throw Error("grammar matcher: expansion too deep");
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
    if (x.pos != y.pos) return false;
    a = x.parent;
    b = y.parent;
  }
  return true;
}

void GrammarMatcher::dedupe(State& s) const {
  // In place: stacks with different tops differ, so only equal tops need a full comparison.
  size_t kept = 0;
  for (size_t i = 0; i < s.stacks.size(); ++i) {
    const int32_t id = s.stacks[i];
    const int32_t pos = nodes_[static_cast<size_t>(id)].pos;
    bool dup = false;
    for (size_t k = 0; k < kept && !dup; ++k) {
      const int32_t other = s.stacks[k];
      dup = nodes_[static_cast<size_t>(other)].pos == pos && same_stack(other, id);
    }
    if (!dup) s.stacks[kept++] = id;
  }
  s.stacks.resize(kept);
  if (kept > kMaxStacks)
    throw Error("grammar matcher: schema is too ambiguous (" + std::to_string(kept) + " parses alive)");
}

void GrammarMatcher::compact(State& s) {
  std::vector<Node> fresh;
  std::unordered_map<int32_t, int32_t> moved;
  std::function<int32_t(int32_t)> copy = [&](int32_t id) -> int32_t {
    if (id < 0) return -1;
    auto it = moved.find(id);
    if (it != moved.end()) return it->second;
    const Node nd = nodes_[static_cast<size_t>(id)];
    const int32_t parent = copy(nd.parent);
    fresh.push_back({nd.pos, parent});
    const int32_t nid = static_cast<int32_t>(fresh.size() - 1);
    moved.emplace(id, nid);
    return nid;
  };
  for (int32_t& id : s.stacks) id = copy(id);
  nodes_.swap(fresh);
}

}  // namespace edgellm::sampling
