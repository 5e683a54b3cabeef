#include "runtime/grammar_constraint.h"

#include <string>
#include <vector>

namespace edgellm::runtime {

std::shared_ptr<const sampling::TokenTrie> make_token_trie(const tokenizer::Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n; ++id) {
    if (tok.is_end_of_generation(id)) eog.push_back(id);
    if (!tok.is_control(id)) pieces[static_cast<size_t>(id)] = tok.token_bytes(id);
  }
  return std::make_shared<sampling::TokenTrie>(pieces, eog);
}

}  // namespace edgellm::runtime
