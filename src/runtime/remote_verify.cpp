#include "runtime/remote_verify.h"

#include <algorithm>
#include <chrono>

#include "runtime/sequence.h"

namespace edgellm::runtime {
namespace {

using Clock = std::chrono::steady_clock;

int32_t argmax(const float* x, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// Verifier answer of the right length, or VerifierError.
std::vector<int32_t> checked_verify(RemoteVerifier& v, const std::vector<int32_t>& sent, size_t n_context,
                                    size_t n_draft) {
  std::vector<int32_t> targets = v.verify(sent, n_context);
  if (targets.size() != n_draft + 1)
    throw VerifierError("the verifier scored " + std::to_string(targets.size()) + " positions, not " +
                        std::to_string(n_draft + 1));
  return targets;
}

// Feeds the verified tokens (the draft's agreed prefix and the target's own token after it) to
// `seq` and `ctx`; returns how many guesses were accepted.
size_t keep_verified(SequenceState& seq, std::vector<int32_t>& ctx, const std::vector<int32_t>& draft,
                     const std::vector<int32_t>& targets, int32_t n_ctx, int32_t n_vocab, RemoteVerifyStats& st) {
  size_t m = 0;
  while (m < draft.size() && targets[m] == draft[m]) ++m;
  ++st.rounds;
  st.drafted += static_cast<int32_t>(draft.size());
  st.accepted += static_cast<int32_t>(m);
  for (size_t i = 0; i <= m && !seq.finished(); ++i) {
    const int32_t t = i < m ? draft[i] : targets[m];
    if (t == RemoteVerifier::kEnd || t < 0 || t >= n_vocab) {  // a bad id must not reach a cache
      seq.end_of_generation();
      break;
    }
    ++st.verified_tokens;
    if (seq.force(t, static_cast<int32_t>(ctx.size()) + 1, n_ctx) < 0) break;
    ctx.push_back(t);
  }
  return m;
}

// What both entry points require of a request; the longest draft to send (at least 1).
int32_t checked_draft_max(const GenerateParams& params, int32_t draft_max) {
  if (params.sampling.temperature > 0.0f)
    throw InvalidArgument("a remote verifier checks greedy answers: use temperature 0");
  if (params.constraint) throw InvalidArgument("a remote verifier cannot apply a grammar constraint");
  return std::max<int32_t>(1, draft_max);
}

}  // namespace

GenerateResult generate_remote_verified(const Engine& engine, int32_t n_ctx, const GreedyDraftFn& draft,
                                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                                        RemoteVerifier& verifier, int32_t draft_max, RemoteVerifyStats* stats,
                                        const TextCallback& on_text) {
  draft_max = checked_draft_max(params, draft_max);
  RemoteVerifyStats local_stats;
  RemoteVerifyStats& st = stats ? *stats : local_stats;
  const int32_t n_vocab = engine.config().n_vocab;
  SequenceState seq(engine.tokenizer(), n_vocab, params, prompt, on_text);
  GenerateResult& res = seq.result();
  const auto t0 = Clock::now();
  std::vector<int32_t> ctx = prompt, sent;
  while (!seq.finished()) {
    int32_t k = n_ctx - 1 - static_cast<int32_t>(ctx.size());
    if (params.max_tokens >= 0) k = std::min(k, params.max_tokens - res.n_generated);
    if (!st.failure.empty()) {  // the device alone
      k = std::clamp(k, 1, 16);
      const std::vector<int32_t> got = draft(ctx, k);
      for (int32_t t : got) {
        if (t < 0 || t >= n_vocab) {
          seq.end_of_generation();
          break;
        }
        ++st.device_tokens;
        if (seq.force(t, static_cast<int32_t>(ctx.size()) + 1, n_ctx) < 0) break;
        ctx.push_back(t);
      }
      if (!seq.finished() && static_cast<int32_t>(got.size()) < k) seq.end_of_generation();  // its answer ended
      ++res.n_decode_passes;
      continue;
    }
    k = std::clamp(k, 0, draft_max);
    std::vector<int32_t> d = k > 0 ? draft(ctx, k) : std::vector<int32_t>{};
    if (static_cast<int32_t>(d.size()) > k) d.resize(static_cast<size_t>(k));
    sent = ctx;
    sent.insert(sent.end(), d.begin(), d.end());
    std::vector<int32_t> targets;
    try {
      targets = checked_verify(verifier, sent, ctx.size(), d.size());
    } catch (const VerifierError& e) {
      st.failure = e.what();
      continue;
    }
    keep_verified(seq, ctx, d, targets, n_ctx, n_vocab, st);
    ++res.n_decode_passes;
  }
  res.n_drafted = st.drafted;
  res.n_draft_accepted = st.accepted;
  res.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return std::move(res);
}

GenerateResult generate_remote_verified(Session& s, const std::vector<int32_t>& prompt, const GenerateParams& params,
                                        RemoteVerifier& verifier, int32_t draft_max, RemoteVerifyStats* stats,
                                        const TextCallback& on_text) {
  draft_max = checked_draft_max(params, draft_max);
  RemoteVerifyStats local_stats;
  RemoteVerifyStats& st = stats ? *stats : local_stats;
  const auto& tok = s.engine().tokenizer();
  const int32_t n_vocab = s.engine().config().n_vocab;
  std::vector<float> logits(n_vocab), rows;
  auto t0 = Clock::now();
  const int32_t n_evaluated = s.load_prompt(prompt, logits.data());
  const double prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  SequenceState seq(tok, n_vocab, params, prompt, on_text);
  GenerateResult& res = seq.result();
  t0 = Clock::now();
  std::vector<int32_t> ctx = prompt, draft, sent;
  try {
    while (!seq.finished()) {
      const auto n_ctx_now = static_cast<int32_t>(ctx.size());
      if (!st.failure.empty()) {  // the device alone, from its logits after ctx
        const int32_t id = seq.step(logits.data(), n_ctx_now + 1, s.n_ctx());
        if (id < 0) break;
        ++st.device_tokens;
        ctx.push_back(id);
        s.extend({id}, logits.data());
        continue;
      }
      int32_t k = std::min(draft_max, s.n_ctx() - 1 - n_ctx_now);
      if (params.max_tokens >= 0) k = std::min(k, params.max_tokens - res.n_generated);
      k = std::max(k, 0);
      // Greedy draft on the device; its cache then holds ctx + draft[0 .. k-1).
      draft.clear();
      std::vector<float> dl = logits;
      for (int32_t j = 0; j < k; ++j) {
        const int32_t t = argmax(dl.data(), n_vocab);
        draft.push_back(t);
        if (tok.is_end_of_generation(t) || j + 1 == k) break;
        s.extend({t}, dl.data());
      }
      sent = ctx;
      sent.insert(sent.end(), draft.begin(), draft.end());
      std::vector<int32_t> targets;
      try {
        targets = verifier.verify(sent, ctx.size());
        if (targets.size() != draft.size() + 1)
          throw VerifierError("the verifier scored " + std::to_string(targets.size()) + " positions, not " +
                              std::to_string(draft.size() + 1));
      } catch (const VerifierError& e) {
        st.failure = e.what();
        s.truncate(n_ctx_now);  // back to ctx, whose logits `logits` still holds
        continue;
      }
      ++st.rounds;
      size_t m = 0;
      while (m < draft.size() && targets[m] == draft[m]) ++m;
      st.drafted += static_cast<int32_t>(draft.size());
      st.accepted += static_cast<int32_t>(m);
      // The kept tokens: draft[0 .. m) and the target's own token after them.
      std::vector<int32_t> keep(draft.begin(), draft.begin() + static_cast<std::ptrdiff_t>(m));
      keep.push_back(targets[m]);
      for (int32_t t : keep) {
        if (t == RemoteVerifier::kEnd) {
          seq.end_of_generation();
          break;
        }
        if (t < 0 || t >= n_vocab) {  // checked by the verifier; a bad id must not reach the cache
          seq.end_of_generation();
          break;
        }
        ++st.verified_tokens;
        if (seq.force(t, static_cast<int32_t>(ctx.size()) + 1, s.n_ctx()) < 0) break;
        ctx.push_back(t);
      }
      if (seq.finished()) break;
      // Device cache: keep what matches ctx, run the rest (at least the target's token) for the
      // logits the next draft starts from.
      const auto held = std::min<size_t>(s.tokens().size(), static_cast<size_t>(n_ctx_now) + m);
      s.truncate(static_cast<int32_t>(held));
      const std::vector<int32_t> rest(ctx.begin() + static_cast<std::ptrdiff_t>(held), ctx.end());
      rows.resize(rest.size() * static_cast<size_t>(n_vocab));
      s.extend(rest, rows.data());
      std::copy(rows.end() - n_vocab, rows.end(), logits.begin());
      ++res.n_decode_passes;
    }
  } catch (...) {
    s.reset();
    throw;
  }
  res.n_drafted = st.drafted;
  res.n_draft_accepted = st.accepted;
  res.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.prefill_seconds = prefill_seconds;
  res.n_prompt_evaluated = n_evaluated;
  return std::move(res);
}

}  // namespace edgellm::runtime
