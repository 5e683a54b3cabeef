#include "runtime/engine.h"

#include <algorithm>

#include "io/checksum.h"
#include "model/bert.h"
#include "runtime/context_shift.h"
#include "util/error.h"

namespace edgellm::runtime {

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::unique_ptr<Engine> Engine::load(const std::string& path, const EngineOptions& opts) {
  auto e = std::unique_ptr<Engine>(new Engine());
  auto file = io::GgufFile::open(path);
  if (model::BertModel::is_bert(*file))
    throw ModelFormatError(path + " is a sentence-embedding model (BERT), not a text generator: use it with "
                           "`edgellm embed` or `edgellm serve --embedding-model`");
  e->model_ = model::Model::from_file(std::move(file));
  e->tokenizer_ = tokenizer::Tokenizer::from_gguf(e->model_->file());
  if (e->tokenizer_->n_vocab() != e->model_->config().n_vocab)
    throw ModelFormatError(path + ": tokenizer has " + std::to_string(e->tokenizer_->n_vocab()) +
                           " tokens but the model's vocabulary is " + std::to_string(e->model_->config().n_vocab));
  const auto& tok = *e->tokenizer_;
  const std::string bos = tok.bos_id() >= 0 ? tok.token_text(tok.bos_id()) : "";
  const std::string eos = tok.eos_id() >= 0 ? tok.token_text(tok.eos_id()) : "";
  e->formatter_ = chat::make_formatter(e->model_->file(), bos, eos);
  e->pool_ = opts.share_pool_with ? opts.share_pool_with->pool_ : std::make_shared<ops::ThreadPool>(opts.n_threads);
  e->pool_mutex_ = opts.share_pool_with ? opts.share_pool_with->pool_mutex_ : std::make_shared<std::mutex>();
  return e;
}

uint64_t Engine::model_checksum() const {
  std::call_once(checksum_once_, [this] { checksum_ = io::checksum_file(model_->file()); });
  return checksum_;
}

void Engine::forward(const model::Batch& batch, model::Workspace& ws, float* logits, float* hidden) const {
  std::lock_guard<std::mutex> lock(*pool_mutex_);
  model_->forward(batch, ws, *pool_, logits, hidden);
}

bool Engine::needs_bos(const std::string& text) const {
  const auto& tok = *tokenizer_;
  if (!tok.add_bos_default() || tok.bos_id() < 0) return false;
  const std::string bos = tok.token_text(tok.bos_id());
  return bos.empty() || text.compare(0, bos.size(), bos) != 0;
}

std::vector<int32_t> Engine::tokenize_prompt(const std::string& text) const {
  return tokenizer_->encode(text, needs_bos(text), /*parse_special=*/true);
}

std::vector<int32_t> Engine::tokenize_chat(const std::vector<chat::Message>& messages, bool add_generation_prompt,
                                           const chat::Value& tools, std::string* rendered) const {
  const auto& tok = *tokenizer_;
  chat::RenderedPrompt r = formatter_->format_protected(messages, add_generation_prompt, tools);
  if (!r.spans_known) {
    // Unprotected parsing is only safe when no message text contains a control token.
    for (const auto& m : messages)
      for (const auto& t : chat::message_texts(m))
        for (int32_t id : tok.encode(t, false, true))
          if (tok.is_control(id))
            throw InvalidArgument("a message contains the control token '" + tok.token_text(id) +
                                  "' as text, and this model's chat template rewrites message text, so it "
                                  "cannot be kept apart from the template's own control tokens; remove it");
  }
  std::vector<tokenizer::Tokenizer::TextRange> plain;
  plain.reserve(r.message_spans.size());
  for (const auto& [b, e] : r.message_spans) plain.push_back({b, e});
  auto ids = tok.encode(r.text, needs_bos(r.text), /*parse_special=*/true, plain);
  if (rendered) *rendered = std::move(r.text);
  return ids;
}

Session::Session(const Engine& engine, int32_t n_ctx, model::KvTypes kv_types)
    : engine_(engine), cache_(engine.model().cache_config(kv_types), n_ctx, kv_types) {}

void Session::set_lora(model::LoraSet adapters) {
  for (const auto& e : adapters.entries)
    if (!e.adapter || !e.adapter->fits(engine_.config()))
      throw InvalidArgument("LoRA adapter " + (e.adapter ? e.adapter->path() : std::string("(null)")) +
                            " was not loaded for this model");
  if (adapters == lora_) return;
  lora_ = std::move(adapters);
  reset();
}

void Session::reset() {
  cache_.clear();
  tokens_.clear();
}

void Session::prefill(size_t from, float* last_logits) {
  model::Batch batch;
  batch.head_rows = head_rows_;
  for (size_t i = from; i < tokens_.size(); i += n_batch_) {
    const size_t end = std::min(tokens_.size(), i + static_cast<size_t>(n_batch_));
    batch.clear();
    for (size_t j = i; j < end; ++j)
      batch.add(tokens_[j], static_cast<int32_t>(j), &cache_, j + 1 == tokens_.size(), adapters());
    engine_.forward(batch, ws_, batch.logit_rows.empty() ? nullptr : last_logits);
  }
}

int32_t Session::load_prompt(const std::vector<int32_t>& prompt, float* last_logits) {
  if (prompt.empty()) throw InvalidArgument("empty prompt: give at least one token of input");
  if (static_cast<int64_t>(prompt.size()) >= n_ctx())
    throw InvalidArgument("prompt is " + std::to_string(prompt.size()) + " tokens but the context holds " +
                          std::to_string(n_ctx()) + "; shorten the prompt or raise the context size (-c)");
  // Reuse the longest cached prefix, but always run at least the last prompt token so that
  // we have its logits.
  size_t common = 0;
  while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common]) ++common;
  common = std::min(common, prompt.size() - 1);
  cache_.truncate(static_cast<int32_t>(common));
  tokens_ = prompt;
  try {
    prefill(common, last_logits);
  } catch (...) {
    reset();  // a failed pass leaves the cache in an unknown state
    throw;
  }
  return static_cast<int32_t>(prompt.size() - common);
}

void Session::extend(const std::vector<int32_t>& toks, float* logits) {
  if (toks.empty()) return;
  if (tokens_.size() + toks.size() > static_cast<size_t>(n_ctx()))
    throw InvalidArgument(std::to_string(toks.size()) + " more tokens do not fit the context of " +
                          std::to_string(n_ctx()) + " (" + std::to_string(tokens_.size()) + " held)");
  model::Batch batch;
  batch.head_rows = head_rows_;
  for (size_t i = 0; i < toks.size(); ++i)
    batch.add(toks[i], static_cast<int32_t>(tokens_.size() + i), &cache_, true, adapters());
  engine_.forward(batch, ws_, logits);
  tokens_.insert(tokens_.end(), toks.begin(), toks.end());
}

void Session::truncate(int32_t n) {
  if (n < 0 || static_cast<size_t>(n) > tokens_.size())
    throw InvalidArgument("cannot truncate a session of " + std::to_string(tokens_.size()) + " tokens to " +
                          std::to_string(n));
  cache_.truncate(n);
  tokens_.resize(static_cast<size_t>(n));
}

int32_t Session::shift_to(const std::vector<int32_t>& prompt) {
  return static_cast<int32_t>(apply_context_shift(engine_.config(), cache_, tokens_, plan_context_shift(tokens_, prompt)));
}

GenerateResult Session::generate(const std::vector<int32_t>& prompt, const GenerateParams& params,
                                 const TextCallback& on_text) {
  const int32_t n_vocab = engine_.config().n_vocab;
  std::vector<float> logits(n_vocab);
  auto t0 = Clock::now();
  const int32_t n_evaluated = load_prompt(prompt, logits.data());
  const double prefill_seconds = seconds_since(t0);

  SequenceState seq(engine_.tokenizer(), n_vocab, params, prompt, on_text);
  t0 = Clock::now();
  model::Batch batch;
  batch.head_rows = head_rows_;
  for (;;) {
    const int32_t id = seq.step(logits.data(), static_cast<int32_t>(tokens_.size()), n_ctx());
    if (id < 0) break;
    batch.clear();
    batch.add(id, static_cast<int32_t>(tokens_.size()), &cache_, true, adapters());
    engine_.forward(batch, ws_, logits.data());
    tokens_.push_back(id);
    ++seq.result().n_decode_passes;
  }
  GenerateResult& res = seq.result();
  res.decode_seconds = seconds_since(t0);
  res.prefill_seconds = prefill_seconds;
  res.n_prompt_evaluated = n_evaluated;
  return std::move(res);
}

std::vector<float> Session::evaluate_all(const std::vector<int32_t>& tokens, int32_t n_batch) {
  if (tokens.empty()) throw InvalidArgument("nothing to evaluate: no tokens");
  if (static_cast<int64_t>(tokens.size()) > n_ctx())
    throw InvalidArgument(std::to_string(tokens.size()) + " tokens do not fit the context of " +
                          std::to_string(n_ctx()));
  reset();
  const int32_t n_vocab = engine_.config().n_vocab;
  std::vector<float> logits(tokens.size() * static_cast<size_t>(n_vocab));
  model::Batch batch;
  for (size_t i = 0; i < tokens.size(); i += n_batch) {
    const size_t end = std::min(tokens.size(), i + static_cast<size_t>(n_batch));
    batch.clear();
    for (size_t j = i; j < end; ++j) batch.add(tokens[j], static_cast<int32_t>(j), &cache_, true, adapters());
    engine_.forward(batch, ws_, &logits[i * n_vocab]);
  }
  tokens_ = tokens;
  return logits;
}

std::vector<float> Session::embed(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw InvalidArgument("nothing to embed: the text has no tokens");
  if (static_cast<int64_t>(tokens.size()) > n_ctx())
    throw InvalidArgument(std::to_string(tokens.size()) + " tokens do not fit the context of " +
                          std::to_string(n_ctx()));
  reset();
  const size_t n_embd = static_cast<size_t>(engine_.config().n_embd);
  std::vector<double> sum(n_embd, 0.0);
  std::vector<float> hidden;
  model::Batch batch;
  try {
    for (size_t i = 0; i < tokens.size(); i += n_batch_) {
      const size_t end = std::min(tokens.size(), i + static_cast<size_t>(n_batch_));
      batch.clear();
      // Every row's hidden state is wanted; logits (the output head) are not computed.
      for (size_t j = i; j < end; ++j) batch.add(tokens[j], static_cast<int32_t>(j), &cache_, true);
      hidden.resize(batch.size() * n_embd);
      engine_.forward(batch, ws_, nullptr, hidden.data());
      for (size_t r = 0; r < batch.size(); ++r)
        for (size_t k = 0; k < n_embd; ++k) sum[k] += hidden[r * n_embd + k];
    }
  } catch (...) {
    reset();
    throw;
  }
  reset();
  std::vector<float> out(n_embd);
  for (size_t k = 0; k < n_embd; ++k) out[k] = static_cast<float>(sum[k] / static_cast<double>(tokens.size()));
  return out;
}

}  // namespace edgellm::runtime
