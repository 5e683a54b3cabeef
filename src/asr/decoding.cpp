#include "asr/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "util/error.h"

namespace edgellm::asr {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t id_of(const WhisperModel& m, const char* text, bool required = true) {
  const auto id = m.tokenizer().find_token(text);
  if (!id && required) throw ModelFormatError(std::string("the Whisper vocabulary has no ") + text);
  return id ? *id : -1;
}

// log-softmax in place (double accumulation; -inf stays -inf). The sum of exponentials over the
// vocabulary runs in vector double lanes (ops::exp_sums): one libm exp per token of a 51865-token
// vocabulary was a serial millisecond per decoding step.
void log_softmax(std::vector<float>& x) {
  const float mx = *std::max_element(x.begin(), x.end());
  double sum = 0;
  ops::exp_sums(x.data(), static_cast<int64_t>(x.size()), mx, 1.0, std::numeric_limits<float>::lowest(), &sum,
                nullptr);
  const float lse = mx + static_cast<float>(std::log(sum));
  for (float& v : x) v -= lse;
}

// The text-context budget of CTranslate2: at most half the context is sampled, and never past it.
int max_new_tokens(const WhisperModel& m, const std::vector<int32_t>& prompt) {
  const int ctx = m.config().n_text_ctx;
  const int start_step = static_cast<int>(prompt.size()) - 1;
  const int n = std::min(ctx / 2, ctx - start_step);
  if (n <= 0) throw InvalidArgument("the Whisper prompt leaves no room in the text context");
  return n;
}

// The decoder after the prompt, and P(<|nospeech|>) from the logits at <|startoftranscript|>
// (raw logits: no suppression applies there).
struct Prepared {
  std::unique_ptr<WhisperDecoder> dec;
  std::vector<float> logits;
  float no_speech_prob = 0;
};

Prepared prepare(const WhisperModel& m, const WhisperTokens& tk, const std::shared_ptr<const CrossKV>& cross,
                 const std::vector<int32_t>& prompt, ops::ThreadPool& pool) {
  const auto sot = std::find(prompt.begin(), prompt.end(), tk.sot);
  if (sot == prompt.end()) throw InvalidArgument("the Whisper prompt has no <|startoftranscript|>");
  Prepared p;
  p.dec = std::make_unique<WhisperDecoder>(m, cross, pool);
  const std::vector<int32_t> head(prompt.begin(), sot + 1), tail(sot + 1, prompt.end());
  p.logits = p.dec->feed(head);
  if (tk.no_speech >= 0) {
    std::vector<float> at_sot = p.logits;
    log_softmax(at_sot);
    p.no_speech_prob = std::exp(at_sot[tk.no_speech]);
  }
  if (!tail.empty()) p.logits = p.dec->feed(tail);
  return p;
}

// Log-probabilities of the next token of hypothesis `seq` from its raw logits.
std::vector<float> step_logprobs(const WhisperModel& m, const WhisperTokens& tk, const GenerateOptions& o,
                                 const std::vector<int32_t>& seq, std::vector<float> logits) {
  filter_logits(m, tk, o, seq, logits);
  log_softmax(logits);
  return logits;
}

Generation finish(std::vector<int32_t> tokens, double sum, float lp) {
  Generation g;
  g.sum_logprob = sum;
  g.score = sum / std::pow(static_cast<double>(tokens.size()), static_cast<double>(lp));
  g.tokens = std::move(tokens);
  return g;
}

// Greedy (temperature 0) or one sample at `temperature`.
Generation sample_one(const WhisperModel& m, const WhisperTokens& tk, const GenerateOptions& o, WhisperDecoder& dec,
                      std::vector<float> logits, int max_len, std::mt19937_64& rng) {
  std::vector<int32_t> seq;
  double sum = 0;
  std::vector<double> probs;
  for (int step = 0; step < max_len; ++step) {
    const std::vector<float> lp = step_logprobs(m, tk, o, seq, std::move(logits));
    int32_t next;
    if (o.temperature <= 0) {
      next = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
    } else {
      probs.resize(lp.size());
      for (size_t i = 0; i < lp.size(); ++i) probs[i] = std::exp(static_cast<double>(lp[i]) / o.temperature);
      std::discrete_distribution<int32_t> pick(probs.begin(), probs.end());
      next = pick(rng);
    }
    sum += lp[next];
    if (next == tk.eot) break;
    seq.push_back(next);
    if (step + 1 == max_len) break;
    logits = dec.feed({next});
  }
  return finish(std::move(seq), sum, o.length_penalty);
}

struct Candidate {
  double score;
  int beam;
  int32_t token;
};

// CTranslate2's beam search: 2 * beam_size candidates a step over all beams; a candidate ending
// in <|endoftext|> among the first beam_size becomes a finished hypothesis and the next
// non-ending candidate takes its place; done after round(beam_size * patience) hypotheses (or
// when the best beam ends, without a length penalty), ranked by score / len^length_penalty.
Generation beam_search(const WhisperModel& m, const WhisperTokens& tk, const GenerateOptions& o, Prepared& p,
                       int max_len) {
  const int K = o.beam_size, n_cand = 2 * K;
  const size_t max_hyps = static_cast<size_t>(std::lround(static_cast<float>(K) * o.patience));
  struct Beam {
    std::unique_ptr<WhisperDecoder> dec;
    std::vector<int32_t> seq;
    double score = 0;
    std::vector<float> logits;
  };
  std::vector<Beam> beams(1), next_beams;
  beams[0].dec = std::move(p.dec);
  beams[0].logits = std::move(p.logits);
  std::vector<std::pair<double, std::vector<int32_t>>> hyps;  // raw sum, tokens
  bool top_finished = false;
  std::vector<Candidate> cands;
  for (int step = 0; step < max_len; ++step) {
    cands.clear();
    for (int b = 0; b < static_cast<int>(beams.size()); ++b) {
      const std::vector<float> lp = step_logprobs(m, tk, o, beams[b].seq, beams[b].logits);
      std::vector<int32_t> idx(lp.size());
      std::iota(idx.begin(), idx.end(), 0);
      const int k = std::min<int>(n_cand, static_cast<int>(idx.size()));
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t c) {
        return lp[a] > lp[c] || (lp[a] == lp[c] && a < c);
      });
      for (int i = 0; i < k; ++i) cands.push_back({beams[b].score + lp[idx[i]], b, idx[i]});
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& c) { return a.score > c.score; });
    if (static_cast<int>(cands.size()) > n_cand) cands.resize(n_cand);
    const bool last = step + 1 == max_len;
    std::vector<int> alive;
    int secondary = K;
    for (int k = 0; k < K && k < static_cast<int>(cands.size()); ++k) {
      int keep = k;
      const Candidate& c = cands[k];
      if (c.token == tk.eot || last) {
        if (k == 0) top_finished = true;
        std::vector<int32_t> seq = beams[c.beam].seq;
        if (c.token != tk.eot) seq.push_back(c.token);
        hyps.emplace_back(c.score, std::move(seq));
        for (int j = secondary; j < static_cast<int>(cands.size()); ++j)
          if (cands[j].token != tk.eot) {
            keep = j, secondary = j + 1;
            break;
          }
      }
      alive.push_back(keep);
    }
    const bool done = last || (o.length_penalty == 0 ? top_finished && !hyps.empty() : hyps.size() >= max_hyps);
    if (done) break;
    // The surviving candidates, each with a copy of its source beam's cache.
    next_beams.resize(alive.size());
    for (size_t i = 0; i < alive.size(); ++i) {
      const Candidate& c = cands[alive[i]];
      Beam& nb = next_beams[i];
      if (!nb.dec) nb.dec = std::make_unique<WhisperDecoder>(*beams[c.beam].dec);
      else nb.dec->copy_from(*beams[c.beam].dec);
      nb.seq = beams[c.beam].seq;
      nb.seq.push_back(c.token);
      nb.score = c.score;
    }
    for (Beam& nb : next_beams) nb.logits = nb.dec->feed({nb.seq.back()});
    std::swap(beams, next_beams);
  }
  if (hyps.empty()) return finish({}, 0, o.length_penalty);
  size_t best = 0;
  double best_score = -INFINITY;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const double s = hyps[i].first / std::pow(static_cast<double>(hyps[i].second.size()), o.length_penalty);
    if (i == 0 || s > best_score) best = i, best_score = s;
  }
  return finish(std::move(hyps[best].second), hyps[best].first, o.length_penalty);
}

}  // namespace

WhisperTokens WhisperTokens::of(const WhisperModel& m) {
  WhisperTokens t;
  t.sot = id_of(m, "<|startoftranscript|>");
  t.eot = id_of(m, "<|endoftext|>");
  t.sot_prev = id_of(m, "<|startofprev|>");
  t.no_timestamps = id_of(m, "<|notimestamps|>");
  t.timestamp_begin = t.no_timestamps + 1;
  t.no_speech = id_of(m, "<|nospeech|>", false);
  if (t.no_speech < 0) t.no_speech = id_of(m, "<|nocaptions|>", false);
  t.transcribe = id_of(m, "<|transcribe|>", false);
  t.translate = id_of(m, "<|translate|>", false);
  if (t.timestamp_begin >= m.config().n_vocab) throw ModelFormatError("the Whisper vocabulary has no timestamps");
  return t;
}

double Generation::avg_logprob() const {
  if (tokens.empty()) return std::nan("");
  return sum_logprob / static_cast<double>(tokens.size() + 1);
}

void filter_logits(const WhisperModel& m, const WhisperTokens& tk, const GenerateOptions& o,
                   const std::vector<int32_t>& seq, std::vector<float>& logits) {
  const WhisperConfig& c = m.config();
  const int32_t V = c.n_vocab, tb = tk.timestamp_begin;
  for (int32_t id : c.suppress_ids) logits[id] = kNegInf;
  if (seq.empty() && o.suppress_blank)
    for (int32_t id : c.suppress_ids_begin) logits[id] = kNegInf;
  if (!o.timestamps) {  // after <|notimestamps|> no timestamp is sampled
    for (int32_t id = tb; id < V; ++id) logits[id] = kNegInf;
    return;
  }
  logits[tk.no_timestamps] = kNegInf;
  if (seq.empty()) {  // a timestamp first, at most the initial maximum
    for (int32_t id = 0; id < tb; ++id) logits[id] = kNegInf;
    for (int32_t id = tb + o.max_initial_timestamp_index + 1; id < V; ++id) logits[id] = kNegInf;
    return;
  }
  bool check = true;
  const int32_t last = seq.back();
  if (last >= tb) {
    const bool penultimate_ts = seq.size() < 2 || seq[seq.size() - 2] >= tb;
    if (penultimate_ts) {  // a closed pair: text (or the end) next
      for (int32_t id = tb; id < V; ++id) logits[id] = kNegInf;
      check = false;
    } else {  // an opened pair: its closing timestamp or the end
      for (int32_t id = 0; id < tk.eot; ++id) logits[id] = kNegInf;
    }
  }
  for (auto it = seq.rbegin(); it != seq.rend(); ++it)
    if (*it >= tb) {  // never back in time
      for (int32_t id = tb; id < *it; ++id) logits[id] = kNegInf;
      break;
    }
  if (!check) return;
  // When the timestamps together are likelier than any text token, a timestamp comes next.
  const float max_text = *std::max_element(logits.begin(), logits.begin() + tb);
  const float max_ts = *std::max_element(logits.begin() + tb, logits.end());
  if (max_ts == kNegInf) return;
  double sum = 0;
  for (int32_t id = tb; id < V; ++id) sum += std::exp(static_cast<double>(logits[id]) - max_ts);
  if (max_ts + std::log(sum) > max_text)
    for (int32_t id = 0; id < tb; ++id) logits[id] = kNegInf;
}

Generation generate(const WhisperModel& m, const std::vector<float>& encoded, const std::vector<int32_t>& prompt,
                    const GenerateOptions& opt, std::mt19937_64& rng, ops::ThreadPool& pool) {
  return generate(m, WhisperDecoder::cross_kv(m, encoded, pool), prompt, opt, rng, pool);
}

Generation generate(const WhisperModel& m, const std::shared_ptr<const CrossKV>& cross,
                    const std::vector<int32_t>& prompt, const GenerateOptions& opt, std::mt19937_64& rng,
                    ops::ThreadPool& pool) {
  if (opt.beam_size < 1 || opt.beam_size > 64) throw InvalidArgument("beam size must be in [1, 64]");
  if (opt.best_of < 1 || opt.best_of > 64) throw InvalidArgument("best_of must be in [1, 64]");
  if (!(opt.patience > 0)) throw InvalidArgument("patience must be > 0");
  const WhisperTokens tk = WhisperTokens::of(m);
  const int max_len = max_new_tokens(m, prompt);
  Prepared p = prepare(m, tk, cross, prompt, pool);
  const float no_speech = p.no_speech_prob;
  Generation g;
  if (opt.temperature > 0) {
    // best_of samples from the same prompt; the best by score.
    for (int i = 0; i < opt.best_of; ++i) {
      WhisperDecoder dec(*p.dec);
      Generation s = sample_one(m, tk, opt, dec, p.logits, max_len, rng);
      if (i == 0 || s.score > g.score) g = std::move(s);
    }
  } else if (opt.beam_size == 1) {
    g = sample_one(m, tk, opt, *p.dec, p.logits, max_len, rng);
  } else {
    g = beam_search(m, tk, opt, p, max_len);
  }
  g.no_speech_prob = no_speech;
  return g;
}

}  // namespace edgellm::asr
