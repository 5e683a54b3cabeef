// libFuzzer target for the OpenAI request parser: a request body in, a GenerateRequest (or the
// embeddings' token lists) out, exactly as the routes call it: parse_body, then
// parse_generate for chat (a "messages" key) or completions ("prompt"), else
// parse_embedding_input. Every rejection must be an ApiError with a 4xx status; any other
// exception escapes and is a finding (the server would answer 500 or terminate), and so is
// a sampler that refuses the parameters the parser accepted. A grammar
// constraint the request sets up is stepped through a few tokens of the real vocabulary.
//
// The model (SmolLM2 by default, fuzz_util.h model_path()) gives the real vocabulary and chat
// template; no weights are run.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "server/api_error.h"
#include "server/grammar_constraint.h"
#include "sampling/sampler.h"
#include "server/request.h"
#include "util/error.h"

using namespace edgellm;
using server::ojson;

namespace {

std::unique_ptr<runtime::Engine> g_engine;
server::GenerateContext g_ctx;

void step_constraint(runtime::TokenConstraint& c, fuzz::Rng& rng) {
  std::vector<float> logits(static_cast<size_t>(g_engine->config().n_vocab));
  std::vector<int32_t> ok;
  for (int step = 0; step < 4; ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    c.mask(logits.data());
    ok.clear();
    for (size_t i = 0; i < logits.size(); ++i)
      if (std::isfinite(logits[i])) ok.push_back(static_cast<int32_t>(i));
    if (ok.empty()) return;  // only end of generation left (or nothing: grammar_walk checks that)
    c.accept(ok[rng.below(ok.size())]);  // must not throw: the token was allowed
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("EDGELLM_REPACK", "0", 1);  // no weights are run: skip repacking them at load
  runtime::EngineOptions opts;
  opts.n_threads = 1;
  try {
    g_engine = runtime::Engine::load(fuzz::model_path(), opts);
  } catch (const Error& e) {
    std::fprintf(stderr, "request_fuzz: cannot load %s (%s); set EDGELLM_FUZZ_MODEL\n", fuzz::model_path().c_str(),
                 e.what());
    std::exit(2);
  }
  g_ctx.engine = g_engine.get();
  g_ctx.model_id = "fuzz-model";
  g_ctx.n_ctx = 2048;
  g_ctx.max_n = 4;
  g_ctx.template_renders_tools = true;
  g_ctx.trie = server::make_token_trie(g_engine->tokenizer());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::Rng rng(text);
  try {
    const ojson body = server::parse_body(text);
    if (body.contains("messages") || body.contains("prompt")) {
      server::GenerateContext ctx = g_ctx;
      ctx.template_renders_tools = rng.below(2) == 0;
      const bool chat = body.contains("messages");
      server::GenerateRequest r = server::parse_generate(body, chat, ctx, /*check_context=*/rng.below(4) != 0);
      // The scheduler builds the sampler from the accepted parameters: it must not refuse them.
      sampling::Sampler sampler(r.params.sampling, g_engine->config().n_vocab);
      if (r.params.constraint) step_constraint(*r.params.constraint, rng);
    } else {
      for (const auto& ids : server::parse_embedding_input(body, g_ctx))
        for (int32_t id : ids)
          fuzz::check(id >= 0 && id < g_engine->config().n_vocab, "request_fuzz", "embedding token in range");
    }
  } catch (const server::ApiError& e) {
    if (e.status < 400 || e.status >= 500) fuzz::fail("request_fuzz", "ApiError " + std::to_string(e.status) + ": " + e.what());
  }
  return 0;
}
