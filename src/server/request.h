#pragma once
// Validation of OpenAI request bodies into what the scheduler runs. Every problem becomes an
// ApiError (4xx) naming the parameter; nothing here touches the model.
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "sampling/constraint.h"
#include "server/tool_calls.h"

namespace edgellm::server {

// What a generation request needs from the server (model, limits, shared vocabulary trie).
struct GenerateContext {
  const runtime::Engine* engine = nullptr;
  std::string model_id;
  std::vector<std::string> model_aliases;  // other names a request's "model" may use
  int32_t n_ctx = 0;               // per slot
  int32_t max_n = 1;               // largest accepted "n"
  bool template_renders_tools = false;
  std::shared_ptr<const sampling::TokenTrie> trie;  // for grammar constraints
  // LoRA adapters loaded at start (serve --lora), with their default scales; a request's "lora"
  // list ids index this set. Null or empty: none loaded.
  const model::LoraSet* adapters = nullptr;
  std::shared_mutex* adapters_mu = nullptr;  // held (shared) while `adapters` is read
  bool context_shift = false;  // chat: drop the oldest turns that do not fit (server.h)
  bool has_draft = false;      // the model's scheduler has a draft model ("speculative" mode "draft")
};

struct GenerateRequest {
  bool chat = true;
  std::vector<int32_t> prompt;
  runtime::GenerateParams params;
  bool stream = false;
  bool include_usage = false;
  ToolConfig tools;               // chat: tool mode and definitions
  bool parse_tools = false;       // look for tool calls in the output
  std::string response_format = "text";  // text, json_object, json_schema
  model::LoraSet lora;            // adapters this request runs with (scale-0 entries dropped)
  int32_t messages_dropped = 0;   // chat: oldest messages left out to fit the context (context shift)
  int32_t n = 1;                  // choices, each its own sequence (seed + index when sampling)
  // Log-probabilities: chat "logprobs": true with "top_logprobs" N, completions "logprobs": N.
  // -1: none; else params.logprobs carries N.
  int32_t logprobs = -1;
  bool echo = false;              // completions: the prompt (and its log-probabilities) comes first
  std::string prompt_text;        // completions: the prompt as given (echo), or decoded from ids
  bool tokens_as_ids = false;     // vLLM's return_tokens_as_token_ids: logprobs name "token_id:N"
  // edgellm's "speculative": {"mode": "lookup"|"draft"|"cloud"|"off", "max": N} (absent: the server's).
  runtime::JobSpeculation speculation;
  // "speculative": {"mode": "cloud", "max": N}: device drafts of N tokens verified by the
  // routing policy's cloud (chat under a policy only); 0: not asked.
  int32_t verify_max = 0;
};

// Parses JSON; malformed or non-object bodies are 400.
ojson parse_body(const std::string& text);
// "model" absent or naming the served model; anything else is 404 model_not_found.
void check_model(const ojson& body, const std::string& model_id, const std::vector<std::string>& aliases = {});

// /v1/chat/completions and /v1/completions bodies. check_context: a prompt that does not fit a
// slot is a 400 here (false: left to the caller, e.g. the hybrid router may send it to the cloud).
GenerateRequest parse_generate(const ojson& body, bool chat, const GenerateContext& ctx, bool check_context = true);

// /v1/embeddings "input": each item as token ids (strings are tokenized without specials).
std::vector<std::vector<int32_t>> parse_embedding_input(const ojson& body, const GenerateContext& ctx);

}  // namespace edgellm::server
