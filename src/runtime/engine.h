#pragma once
// Engine: one loaded model with its tokenizer, chat formatter and thread pool, shared by
// every session. Session: the per-conversation state (KV cache, tokens so far) and the
// generation loop used by the CLI, the server and speculation alike.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chat/chat.h"
#include "model/model.h"
#include "runtime/sequence.h"
#include "ops/thread_pool.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::runtime {

struct EngineOptions {
  int32_t n_threads = 0;  // 0: physical cores
  // Run on this engine's thread pool instead of a new one (a draft model beside its target:
  // the two never run at once, and two pools' spinning workers would compete for the cores).
  const class Engine* share_pool_with = nullptr;
};

class Engine {
 public:
  // Throws ModelFormatError / Error with a message naming the file and the problem.
  static std::unique_ptr<Engine> load(const std::string& path, const EngineOptions& opts = {});

  const model::Model& model() const { return *model_; }
  const model::ModelConfig& config() const { return model_->config(); }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  const chat::ChatFormatter& formatter() const { return *formatter_; }
  ops::ThreadPool& pool() const { return *pool_; }
  // model().forward on the pool, one pass at a time: sessions of one engine may run on
  // different threads (the C API allows it) and the pool runs one region at a time.
  void forward(const model::Batch& batch, model::Workspace& ws, float* logits, float* hidden = nullptr) const;

  // Tokens of a prompt that may contain control tokens written as text (a rendered chat
  // template). BOS is added when the model wants it and the text does not already begin with
  // it (templates such as Gemma's and Llama 3's write it themselves).
  std::vector<int32_t> tokenize_prompt(const std::string& text) const;
  // Tokens of a conversation rendered with the model's chat template. Control tokens are
  // recognised in the template's own text only: a user who types "<|im_end|>" gets those
  // characters, not the end of their turn. If the template rewrites message text so that it
  // cannot be located, a message containing a control token's text is refused
  // (InvalidArgument) rather than risk it. `rendered` receives the prompt text.
  // tools: OpenAI tool definitions for templates that render them, or null.
  std::vector<int32_t> tokenize_chat(const std::vector<chat::Message>& messages, bool add_generation_prompt,
                                     const chat::Value& tools = {}, std::string* rendered = nullptr) const;

  // XXH3 of the model file's bytes, computed on first use (a saved session names its model by
  // it). Thread-safe.
  uint64_t model_checksum() const;

 private:
  bool needs_bos(const std::string& text) const;

  mutable std::once_flag checksum_once_;
  mutable uint64_t checksum_ = 0;

  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<chat::ChatFormatter> formatter_;
  std::shared_ptr<ops::ThreadPool> pool_;
  std::shared_ptr<std::mutex> pool_mutex_;  // shared with the pool (share_pool_with)
};

class Session {
 public:
  // kv_types: the cache's key / value storage types (-ctk / -ctv); InvalidArgument if the
  // model cannot use them.
  Session(const Engine& engine, int32_t n_ctx, model::KvTypes kv_types = {});
  const Engine& engine() const { return engine_; }

  // Runs the prompt (reusing the longest cached prefix) and samples until a stop condition.
  // Throws InvalidArgument for an empty prompt or one that does not fit in the context.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateParams& params,
                          const TextCallback& on_text = nullptr);

  // Evaluates tokens and returns logits for every position: [tokens.size()][n_vocab].
  // Starts from an empty cache. Used by perplexity and the logits tests.
  std::vector<float> evaluate_all(const std::vector<int32_t>& tokens, int32_t n_batch = 512);
  // Mean of the final hidden states [n_embd] over `tokens`, run from an empty cache, which it
  // leaves empty. InvalidArgument for no tokens or more than the context holds.
  std::vector<float> embed(const std::vector<int32_t>& tokens);

  // The steps of generate(), for loops that run more than one token per pass (speculative.h).
  // load_prompt makes the cache hold `prompt`, re-running only what differs from the cached
  // tokens (at least the last one, for its logits), writes the last token's logits [n_vocab]
  // and returns how many prompt tokens it ran. Same errors as generate().
  int32_t load_prompt(const std::vector<int32_t>& prompt, float* last_logits);
  // Runs `toks` after the cached tokens in one pass and writes the logits of each:
  // [toks.size()][n_vocab]. InvalidArgument when they do not fit the context.
  void extend(const std::vector<int32_t>& toks, float* logits);
  // Keeps the first n tokens (cache and record): rolls back a rejected draft.
  // InvalidArgument unless 0 <= n <= tokens().size().
  void truncate(int32_t n);
  // Context shift: makes the cache hold as much of `prompt` as it can without recomputing.
  // Beyond the common prefix, it looks for the cached span that reappears next in `prompt`
  // (the turns kept after older ones were dropped), removes the tokens before it and moves it
  // down with re-rotated keys (model::shift_kv_cache). Returns how many leading tokens of
  // `prompt` the cache now holds; a following load_prompt(prompt) runs only the rest.
  int32_t shift_to(const std::vector<int32_t>& prompt);

  // The LoRA adapters this session runs with (empty: the base model). A set different from the
  // current one empties the cache: a prefix computed under other adapters is never reused.
  // InvalidArgument if an adapter was loaded for another model.
  void set_lora(model::LoraSet adapters);
  const model::LoraSet& lora() const { return lora_; }
  // Logits from load_prompt, extend and generate for token ids below n only (a multiple of 8;
  // the rest are -inf): a draft model's (model::Batch::head_rows). 0: the whole vocabulary.
  void set_head_rows(int32_t n) { head_rows_ = std::max(0, n); }

  void reset();

  // Saved sessions (session_file.cpp): the tokens and the KV cache rows they fill, with the
  // model's checksum, the cache's shape and types, and a checksum of the file. save() writes
  // atomically (temp file + rename). restore() replaces this session's state with the file's
  // and returns the number of tokens. `app_data` is the front end's own state kept with them
  // (chat turns; at most 64 MiB). A file for another model, other cache types, one longer
  // than the context, or a damaged one is an Error naming the file and the cause, and leaves
  // the session empty.
  void save(const std::string& path, const std::string& app_data = {}) const;
  int32_t restore(const std::string& path, std::string* app_data = nullptr);

  int32_t n_ctx() const { return cache_.n_ctx(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const model::KvCache& cache() const { return cache_; }

 private:
  // Feeds tokens [from, end) of tokens_ in chunks; logits of the last one go to `last_logits`.
  void prefill(size_t from, float* last_logits);

  const Engine& engine_;
  model::KvCache cache_;
  model::Workspace ws_;
  const model::LoraSet* adapters() const { return lora_.empty() ? nullptr : &lora_; }

  std::vector<int32_t> tokens_;  // what the cache holds, in order
  model::LoraSet lora_;
  int32_t n_batch_ = 512;
  int32_t head_rows_ = 0;
};

}  // namespace edgellm::runtime
