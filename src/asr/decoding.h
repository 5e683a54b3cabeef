#pragma once
// Token generation for one encoded 30 s window, as CTranslate2's Whisper generate does (the
// engine faster-whisper runs): the model's suppressed tokens, suppress_blank, the timestamp rules
// (timestamps in pairs, never decreasing, the first one at most max_initial_timestamp, a
// timestamp forced when their total probability beats every text token), and greedy, sampled
// (temperature, best_of) or beam search (patience, length penalty) decoding. Also the
// probability of <|nospeech|> at <|startoftranscript|>.
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "asr/whisper.h"

namespace edgellm::asr {

// Ids of Whisper's special tokens in a model's vocabulary.
struct WhisperTokens {
  int32_t sot = -1, eot = -1, sot_prev = -1, no_timestamps = -1, timestamp_begin = -1, no_speech = -1;
  int32_t transcribe = -1, translate = -1;
  static WhisperTokens of(const WhisperModel& m);  // ModelFormatError when one is missing
};

struct GenerateOptions {
  bool timestamps = false;               // the prompt does not end with <|notimestamps|>
  int max_initial_timestamp_index = 50;  // the first timestamp at most 1.00 s (faster-whisper's)
  bool suppress_blank = true;
  int beam_size = 1;
  float patience = 1.0f;
  float length_penalty = 1.0f;
  float temperature = 0.0f;  // > 0: sampling (beam_size ignored), best_of samples
  int best_of = 5;
};

struct Generation {
  std::vector<int32_t> tokens;  // sampled tokens, without <|endoftext|>
  double sum_logprob = 0;       // log-probabilities of the tokens and the end, after suppression
  double score = 0;             // sum_logprob / len^length_penalty (the hypothesis ranking)
  float no_speech_prob = 0;     // P(<|nospeech|>) after <|startoftranscript|>
  // faster-whisper's avg_logprob: sum_logprob / (len + 1) (NaN for an empty transcript, as there).
  double avg_logprob() const;
};

// `prompt` holds [<|startofprev|> previous text...] <|startoftranscript|> [language task]
// [<|notimestamps|>]. InvalidArgument when the prompt leaves no room in the text context.
Generation generate(const WhisperModel& m, const std::vector<float>& encoded, const std::vector<int32_t>& prompt,
                    const GenerateOptions& opt, std::mt19937_64& rng, ops::ThreadPool& pool);
// The same over the window's cross-attention keys/values (WhisperDecoder::cross_kv), so that
// several generations over one window compute them once.
Generation generate(const WhisperModel& m, const std::shared_ptr<const CrossKV>& cross,
                    const std::vector<int32_t>& prompt, const GenerateOptions& opt, std::mt19937_64& rng,
                    ops::ThreadPool& pool);

// The masking of one step (exposed for tests): `logits` of a hypothesis whose sampled tokens
// are `seq` get -inf where a token may not come next.
void filter_logits(const WhisperModel& m, const WhisperTokens& tk, const GenerateOptions& opt,
                   const std::vector<int32_t>& seq, std::vector<float>& logits);

}  // namespace edgellm::asr
