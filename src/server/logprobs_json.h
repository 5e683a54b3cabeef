#pragma once
// OpenAI's logprobs objects from per-position log-probabilities: chat's {"content": [...]} and
// legacy completions' {tokens, token_logprobs, top_logprobs, text_offset} (echo puts the prompt
// first). Token strings are the token's bytes (invalid UTF-8 as U+FFFD); with vLLM's
// "return_tokens_as_token_ids" they are "token_id:N" instead, which names a token exactly.
#include <cstdint>
#include <string>
#include <vector>

#include "sampling/logprobs.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::server {

struct LogprobsStyle {
  const tokenizer::Tokenizer* tok = nullptr;
  bool token_ids = false;  // "token_id:N" strings
};

std::string logprob_token_string(const LogprobsStyle& s, int32_t id);

ojson chat_logprobs_json(const LogprobsStyle& s, const std::vector<sampling::PositionLogprobs>& lps);

// prompt: the prompt's ids (echo; empty otherwise) and prompt_lps their log-probabilities from
// position 1 on; generated: the completion's. Offsets count code points from the start of the
// returned text (the prompt's first when echoed; a BOS the tokenizer added counts 0).
ojson completion_logprobs_json(const LogprobsStyle& s, const std::vector<int32_t>& prompt,
                               const std::vector<sampling::PositionLogprobs>& prompt_lps,
                               const std::vector<sampling::PositionLogprobs>& generated);

}  // namespace edgellm::server
