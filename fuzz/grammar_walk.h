#pragma once
// Drives a grammar constraint the way the server does: probe it before generation (a grammar
// over the matcher's budget is refused there, a 400), then at each step take the allowed-token
// mask, pick one allowed token (steered towards closing the document after a while), accept
// it. Invariants: some token is always allowed (a reachable prefix that can never end is a
// bug), every allowed token is accepted, and a finished document is valid JSON. The matcher's
// budgets (GrammarLimitError) are its defence against costly grammars, so running over one
// during the walk ends the walk cleanly, as it ends the request in the server; any other
// exception is a finding.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "sampling/constraint.h"

namespace edgellm::fuzz {

// A small vocabulary: every single byte (so any grammar can be followed), some multi-byte
// pieces that cross JSON token boundaries, and one end-of-generation id with no bytes.
inline std::shared_ptr<const sampling::TokenTrie> small_trie() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.emplace_back(1, static_cast<char>(b));
  for (const char* p : {"{\"", "\":", "\": ", "\",", "\"}", "\"]", "},", "}]", "[{", "[]", "{}", "true", "false",
                        "null", "  ", "\n  ", "12", "0.5", "-1", "e+", "E-", "abc", "name", "\\u00", "\\\"", "\\n",
                        "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xC3", "\xA9x", ", \"", "\"a\"", "1}"})
    pieces.emplace_back(p);
  pieces.emplace_back("");  // end of generation
  const int32_t eog = static_cast<int32_t>(pieces.size()) - 1;
  return std::make_shared<sampling::TokenTrie>(pieces, std::vector<int32_t>{eog});
}

struct WalkResult {
  std::string text;
  bool finished = false;
  bool refused = false;   // the probe refused the grammar (the server's 400)
  bool limited = false;   // a mask or step ran over the matcher's budget (the request ends)
};

inline WalkResult walk_grammar(const char* target, std::shared_ptr<const sampling::Grammar> g,
                               const std::shared_ptr<const sampling::TokenTrie>& trie, Rng& rng, int max_steps) {
  sampling::Constraint c(std::move(g), trie);
  std::vector<uint8_t> allowed;
  std::vector<int32_t> ids, closing;
  WalkResult out;
  try {
    c.probe();
  } catch (const sampling::GrammarLimitError&) {
    out.refused = true;
    return out;
  }
  const int32_t eog = trie->eog().front();
  for (int step = 0; step < max_steps; ++step) {
    try {
      c.allowed_tokens(allowed);
    } catch (const sampling::GrammarLimitError&) {
      out.limited = true;
      return out;
    }
    ids.clear();
    closing.clear();
    for (int32_t id = 0; id < trie->n_vocab(); ++id) {
      if (!allowed[static_cast<size_t>(id)]) continue;
      ids.push_back(id);
      const std::string& p = trie->piece(id);
      if (p.size() == 1 && (p[0] == '"' || p[0] == '}' || p[0] == ']')) closing.push_back(id);
    }
    check(!ids.empty(), target, "no token allowed: the grammar reached a prefix it cannot finish");
    check(static_cast<bool>(allowed[static_cast<size_t>(eog)]) == c.is_complete(), target,
          "end of generation allowed exactly when the document is complete");
    int32_t pick;
    const bool late = step > max_steps / 2;
    if (c.is_complete() && (late || rng.below(8) == 0)) pick = eog;
    else if (late && !closing.empty() && rng.below(4) != 0) pick = closing[rng.below(closing.size())];
    else pick = ids[rng.below(ids.size())];
    check(c.allows(pick), target, "allows() agrees with allowed_tokens()");
    c.accept(pick);  // must not throw: the token was allowed
    if (pick == eog) {
      out.finished = true;
      check(c.is_finished(), target, "finished after end of generation");
      break;
    }
    out.text += trie->piece(pick);
  }
  return out;
}

}  // namespace edgellm::fuzz
