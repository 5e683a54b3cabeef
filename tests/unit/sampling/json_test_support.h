#pragma once
// Test support for constrained decoding: a synthetic vocabulary, random walks under a
// Constraint, and an independent JSON Schema validator (written from the spec, not from the
// compiler) for the features the compiler supports.
#include <nlohmann/json.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sampling/constraint.h"

namespace edgellm::sampling::testing {

// All 256 single bytes, common JSON pieces, words, and UTF-8 pieces split mid-character. The
// last id is the end-of-generation token (empty piece); the one before it a control token.
std::vector<std::string> synthetic_vocab();
std::shared_ptr<const TokenTrie> synthetic_trie();

struct WalkResult {
  std::string text;
  bool finished = false;
  std::string failure;  // non-empty: a dead end or a trie/naive mismatch, described
};

// Samples allowed tokens until EOG; after `budget` steps prefers tokens that close structures.
// Every `check_every` steps compares the trie walk with a naive per-token check.
WalkResult random_walk(Constraint& c, const TokenTrie& vocab, std::mt19937_64& rng, int budget = 60,
                       int max_steps = 4000, int check_every = 7);

// Independent validator; `why` receives the first violation.
bool validate(const nlohmann::json& v, const nlohmann::json& schema, const nlohmann::json& root, std::string* why);

}  // namespace edgellm::sampling::testing
