/*
 * edgellm.h: the C API of edgellm, an on-device LLM engine.
 *
 * Plain C (C99 and later, or C++). Two opaque handles, as in whisper.h and llama.h:
 *   edgellm_model    the weights, tokenizer and chat template of one GGUF file: read-only
 *                    after loading, shared by any number of sessions;
 *   edgellm_session  one conversation: its KV cache, the tokens it holds, its sampling
 *                    parameters and the last generation's result.
 *
 * Errors. Every function that can fail returns an edgellm_status; EDGELLM_OK is 0. On failure
 * edgellm_last_error() gives a message a user can act on (the file, key or argument at fault).
 * No C++ exception ever leaves this API. Output arguments are written only on success, except
 * *out_len (or *n_tokens) on EDGELLM_ERR_BUFFER_TOO_SMALL, which then says how much is needed.
 *
 * Buffers. A function that returns text writes it NUL-terminated into (buf, buf_size) and sets
 * *out_len to its length without the NUL; if buf_size < *out_len + 1 it writes nothing to buf
 * and returns EDGELLM_ERR_BUFFER_TOO_SMALL (call with buf = NULL, buf_size = 0 to measure).
 *
 * Growing structs. Every options/result struct starts with `struct_size`, set by the caller
 * (the *_init functions do it): the library reads and writes only the fields that fit in it, so
 * a program built against this header keeps working with a later library that has more fields.
 *
 * Thread safety.
 *   - edgellm_last_error() is per thread: it describes the last failed call on the calling thread.
 *   - A model may be used from many threads at once: tokenize, detokenize, chat rendering, model
 *     info and session creation are safe concurrently. Free it only after all its sessions.
 *   - A session must be used by one thread at a time (different sessions may run at once on
 *     different threads, also over the same model: their forward passes take turns on the
 *     model's thread pool).
 *   - A generation callback runs on the thread that called generate; it must not call
 *     functions on the same session.
 *   - An adapter (edgellm_lora) is read-only once loaded: any number of sessions may use it.
 *   - edgellm_model_embed on a sentence-embedding model is safe from many threads (calls take
 *     turns on the model's pool).
 *   - A router may route chats of many sessions from many threads at once (its budget window,
 *     circuit breaker and audit log are shared and locked).
 *
 *   - A batch (edgellm_batch) runs its calls one at a time (concurrent calls take turns); its
 *     callbacks run on the batch's own worker thread, one at a time, and must not call into the
 *     same batch. Batches, sessions and the model's other calls may run at once on other threads.
 *
 * Several sequences. A session runs one sequence. edgellm_batch_generate decodes several prompts
 * together (continuous batching, as the server does): every forward pass holds one token of each
 * running sequence, so n answers cost about the passes of the longest one, not n times as many.
 */
#ifndef EDGELLM_H
#define EDGELLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Incremented whenever this header changes incompatibly (a function's signature or a struct's
 * existing fields). Adding functions or struct fields at the end does not change it. */
#define EDGELLM_API_VERSION 1

#if defined(_WIN32) && defined(EDGELLM_BUILD_SHARED)
#define EDGELLM_API __declspec(dllexport)
#elif defined(__GNUC__)
#define EDGELLM_API __attribute__((visibility("default")))
#else
#define EDGELLM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ------------------------------------------------------------------- */

typedef enum edgellm_status {
  EDGELLM_OK = 0,
  EDGELLM_ERR_INVALID_ARGUMENT = 1, /* NULL handle or pointer, value out of range, prompt too long */
  EDGELLM_ERR_IO = 2,               /* a file cannot be opened or read */
  EDGELLM_ERR_MODEL_FORMAT = 3,     /* not a GGUF file, corrupt, or an unsupported model */
  EDGELLM_ERR_BUFFER_TOO_SMALL = 4, /* *out_len / *n_tokens says how much is needed */
  EDGELLM_ERR_SCHEMA = 5,           /* JSON schema malformed, unsupported or too complex */
  EDGELLM_ERR_TEMPLATE = 6,         /* the chat template failed on these messages */
  EDGELLM_ERR_OUT_OF_MEMORY = 7,
  EDGELLM_ERR_INTERNAL = 8, /* anything else; the message says what */
  EDGELLM_ERR_BAD_STATE = 9, /* a saved session that is corrupt, or from another model or cache type */
  EDGELLM_ERR_CLOUD = 10,    /* routed chat: the cloud's streamed answer broke off after part of it
                                reached the callback, so no tier could complete it */
  EDGELLM_ERR_UNSUPPORTED = 11 /* the library was built without this part (routing: engine-only builds
                                  and -DEDGELLM_CAPI_ROUTING=OFF) */
} edgellm_status;

/* The message of the last failed call on this thread ("" if none). Valid until the next call
 * into this API on the same thread. */
EDGELLM_API const char* edgellm_last_error(void);
/* A constant name for a status, e.g. "EDGELLM_ERR_IO". */
EDGELLM_API const char* edgellm_status_name(edgellm_status status);
/* EDGELLM_API_VERSION of the library actually loaded, and its version string ("0.1.0"). */
EDGELLM_API int edgellm_api_version(void);
EDGELLM_API const char* edgellm_version(void);

/* ---- model ------------------------------------------------------------------------------- */

typedef struct edgellm_model edgellm_model;
typedef struct edgellm_session edgellm_session;

typedef struct edgellm_model_options {
  size_t struct_size;
  int32_t n_threads; /* threads of the model's pool; 0: the physical cores (default) */
} edgellm_model_options;

/* Sets struct_size and the defaults of the fields that fit in struct_size bytes. */
EDGELLM_API edgellm_status edgellm_model_options_init(edgellm_model_options* options, size_t struct_size);

/* Maps and validates a GGUF file: a text generator (llama, qwen2, gemma3 architectures) or a
 * sentence-embedding model (BERT, from `edgellm convert`; see embedding_only). options may be NULL
 * (defaults). EDGELLM_ERR_IO when the file cannot be opened, EDGELLM_ERR_MODEL_FORMAT when it
 * is not a usable model. */
EDGELLM_API edgellm_status edgellm_model_load(const char* path, const edgellm_model_options* options,
                                              edgellm_model** out_model);
/* NULL is allowed. Every session of the model must be freed first. */
EDGELLM_API void edgellm_model_free(edgellm_model* model);

typedef struct edgellm_model_info {
  size_t struct_size;
  const char* architecture; /* general.architecture; valid as long as the model */
  const char* name;         /* general.name, or "" */
  int32_t n_vocab;
  int32_t n_ctx_train; /* context length the model was trained with */
  int32_t n_embd;      /* width of the hidden state, i.e. of an embedding */
  int32_t n_layer;
  int32_t n_head;
  int32_t n_head_kv;
  int32_t bos_token; /* -1 if none */
  int32_t eos_token; /* -1 if none */
  uint64_t file_size; /* bytes */
  bool embedding_only; /* a sentence-embedding model (BERT): edgellm_model_embed, tokens and
                          metadata only; no sessions, no chat template */
} edgellm_model_info;

/* Fills the fields of *info that fit in info->struct_size (set it first). */
EDGELLM_API edgellm_status edgellm_model_get_info(const edgellm_model* model, edgellm_model_info* info);
/* Any GGUF metadata value as text (strings as they are, numbers and booleans printed, arrays
 * as JSON). EDGELLM_ERR_INVALID_ARGUMENT if the key is absent. */
EDGELLM_API edgellm_status edgellm_model_meta(const edgellm_model* model, const char* key, char* buf,
                                              size_t buf_size, size_t* out_len);
/* True for end-of-generation tokens (EOS, end of turn, ...). */
EDGELLM_API bool edgellm_token_is_eog(const edgellm_model* model, int32_t token);

/* ---- tokens and chat template ------------------------------------------------------------ */

/* Text to token ids. add_bos: prepend BOS when the model asks for it. parse_special: text such as
 * "<|im_start|>" becomes its control token (otherwise it stays text, as user input should).
 * Writes at most max_tokens ids; EDGELLM_ERR_BUFFER_TOO_SMALL with *n_tokens = the count needed. */
EDGELLM_API edgellm_status edgellm_tokenize(const edgellm_model* model, const char* text, size_t text_len,
                                            bool add_bos, bool parse_special, int32_t* tokens,
                                            size_t max_tokens, size_t* n_tokens);
/* Token ids to text (control tokens left out when skip_special). An id out of range is
 * EDGELLM_ERR_INVALID_ARGUMENT. */
EDGELLM_API edgellm_status edgellm_detokenize(const edgellm_model* model, const int32_t* tokens, size_t n_tokens,
                                              bool skip_special, char* buf, size_t buf_size, size_t* out_len);

typedef struct edgellm_chat_message {
  const char* role;    /* "system", "user", "assistant", "tool" */
  const char* content; /* UTF-8, NUL-terminated */
} edgellm_chat_message;

/* The prompt text of a conversation in the model's own chat template (ChatML if the file has
 * none), ending with the assistant's turn opened when add_generation_prompt. */
EDGELLM_API edgellm_status edgellm_chat_render(const edgellm_model* model, const edgellm_chat_message* messages,
                                               size_t n_messages, bool add_generation_prompt, char* buf,
                                               size_t buf_size, size_t* out_len);

/* ---- session ----------------------------------------------------------------------------- */

typedef enum edgellm_kv_type {
  EDGELLM_KV_F32 = 0,
  EDGELLM_KV_F16 = 1,
  EDGELLM_KV_Q8_0 = 2,
  EDGELLM_KV_Q4_0 = 3 /* block types need the model's head size to be a multiple of 32 */
} edgellm_kv_type;

typedef struct edgellm_sampling_params {
  size_t struct_size;
  float temperature;     /* <= 0: greedy. Default 0.8 */
  int32_t top_k;         /* <= 0: off. Default 40 */
  float top_p;           /* >= 1: off. Default 0.95 */
  float min_p;           /* <= 0: off. Default 0.05 */
  float repeat_penalty;  /* 1: off (default) */
  int32_t repeat_last_n; /* penalty window; -1: whole history. Default 64 */
  float presence_penalty;
  float frequency_penalty;
  uint64_t seed; /* same seed, same tokens */
} edgellm_sampling_params;

typedef struct edgellm_session_options {
  size_t struct_size;
  int32_t n_ctx; /* context length in tokens; default 4096 */
  edgellm_kv_type type_k; /* KV cache storage types; default F32 */
  edgellm_kv_type type_v;
  const edgellm_sampling_params* sampling; /* initial sampling parameters; NULL: defaults */
} edgellm_session_options;

EDGELLM_API edgellm_status edgellm_sampling_params_init(edgellm_sampling_params* params, size_t struct_size);
EDGELLM_API edgellm_status edgellm_session_options_init(edgellm_session_options* options, size_t struct_size);

/* A new conversation over the model; options may be NULL (defaults). The KV cache's memory is
 * reserved but only touched as positions fill. EDGELLM_ERR_INVALID_ARGUMENT on a
 * sentence-embedding model. */
EDGELLM_API edgellm_status edgellm_session_create(edgellm_model* model, const edgellm_session_options* options,
                                                  edgellm_session** out_session);
/* NULL is allowed. */
EDGELLM_API void edgellm_session_free(edgellm_session* session);
/* Forgets the conversation (the cache keeps its memory). */
EDGELLM_API edgellm_status edgellm_session_reset(edgellm_session* session);
/* Sampling parameters for the following generations. */
EDGELLM_API edgellm_status edgellm_session_set_sampling(edgellm_session* session,
                                                        const edgellm_sampling_params* params);
/* Writes the conversation (its tokens and KV cache) to a file, and reads one back: a later
 * edgellm_chat / edgellm_generate that continues it runs only its new tokens. A state loads only
 * into a session of the same model file and KV types with room for its tokens, else
 * EDGELLM_ERR_BAD_STATE (the session is then empty). EDGELLM_ERR_IO when the file cannot be
 * written or read. The sampling parameters are not part of the state. */
EDGELLM_API edgellm_status edgellm_session_save(const edgellm_session* session, const char* path);
EDGELLM_API edgellm_status edgellm_session_load(edgellm_session* session, const char* path);
/* Context length, and the tokens the cache holds now (0 for a NULL session). */
EDGELLM_API int32_t edgellm_session_n_ctx(const edgellm_session* session);
EDGELLM_API int32_t edgellm_session_n_tokens(const edgellm_session* session);

/* ---- generation -------------------------------------------------------------------------- */

/* Called once per generated token, on the generating thread, with the text that token
 * completes (len may be 0: part of a multi-byte character, or held back while it may be the
 * start of a stop string). At the end, text still held is delivered with token = -1. Return
 * false to stop: the generation then ends with EDGELLM_FINISH_CANCELLED. */
typedef bool (*edgellm_token_callback)(int32_t token, const char* text, size_t len, void* user_data);

typedef struct edgellm_generate_options {
  size_t struct_size;
  int32_t max_tokens;       /* < 0: until an end token or a full context. Default 256 */
  const char* const* stop;  /* stop strings (the text ends before them); may be NULL */
  size_t n_stop;
  bool ignore_eos;          /* keep going past end-of-generation tokens */
  const char* json_schema;  /* NULL, or a JSON Schema (text) the whole answer must match */
  edgellm_token_callback on_token; /* may be NULL */
  void* user_data;
} edgellm_generate_options;

EDGELLM_API edgellm_status edgellm_generate_options_init(edgellm_generate_options* options, size_t struct_size);

typedef enum edgellm_finish_reason {
  EDGELLM_FINISH_STOP = 0,     /* an end token or a stop string */
  EDGELLM_FINISH_LENGTH = 1,   /* max_tokens, or the context is full */
  EDGELLM_FINISH_CANCELLED = 2 /* the callback returned false */
} edgellm_finish_reason;

typedef struct edgellm_generate_result {
  size_t struct_size;
  edgellm_finish_reason finish_reason;
  const char* text;      /* the answer; valid until the session's next generation or free */
  size_t text_len;
  const int32_t* tokens; /* generated ids (without the end token); same lifetime */
  int32_t n_tokens;
  int32_t n_prompt;           /* prompt tokens given */
  int32_t n_prompt_evaluated; /* of which run (the rest was reused from the cache) */
  double prefill_seconds;
  double decode_seconds;
} edgellm_generate_result;

/* Runs the prompt tokens (reusing the longest prefix the session's cache already holds) and
 * samples the answer. options may be NULL (defaults); result may be NULL (set its struct_size
 * otherwise). EDGELLM_ERR_INVALID_ARGUMENT for an empty prompt or one that does not fit the
 * context; EDGELLM_ERR_SCHEMA for a bad json_schema. */
EDGELLM_API edgellm_status edgellm_generate(edgellm_session* session, const int32_t* prompt, size_t n_prompt,
                                            const edgellm_generate_options* options,
                                            edgellm_generate_result* result);
/* The conversation rendered with the model's chat template (control tokens are recognised in the
 * template's text only, never in message content), then edgellm_generate with the template's
 * stop strings added. Pass the whole conversation each turn: the shared prefix is not re-run. */
EDGELLM_API edgellm_status edgellm_chat(edgellm_session* session, const edgellm_chat_message* messages,
                                        size_t n_messages, const edgellm_generate_options* options,
                                        edgellm_generate_result* result);

/* ---- batch: several sequences decoded together ------------------------------------------- */

/* A batch owns n_seq sequences (each with its own KV cache, kept between calls so that a prompt
 * continuing one reuses its tokens) and a worker thread that decodes them: the runtime's
 * scheduler, as `edgellm serve` uses it. */
typedef struct edgellm_batch edgellm_batch;

typedef struct edgellm_batch_options {
  size_t struct_size;
  int32_t n_seq;   /* sequences decoded at once; more items in one call wait for a free one. Default 4 */
  int32_t n_ctx;   /* context per sequence; default 4096 */
  edgellm_kv_type type_k; /* KV cache storage types; default F32 */
  edgellm_kv_type type_v;
  int32_t n_batch; /* most tokens in one forward pass (prompts are read in chunks); default 256 */
} edgellm_batch_options;

EDGELLM_API edgellm_status edgellm_batch_options_init(edgellm_batch_options* options, size_t struct_size);
/* options may be NULL (defaults). EDGELLM_ERR_INVALID_ARGUMENT on a sentence-embedding model or a
 * value out of range. The model must outlive the batch. */
EDGELLM_API edgellm_status edgellm_batch_create(edgellm_model* model, const edgellm_batch_options* options,
                                                edgellm_batch** out_batch);
/* NULL is allowed. Waits for nothing: no call may be running on it. */
EDGELLM_API void edgellm_batch_free(edgellm_batch* batch);

/* One sequence of a batch call: prompt tokens, or (prompt NULL) a conversation rendered with the
 * model's chat template with its stop strings added, as edgellm_chat does. */
typedef struct edgellm_batch_item {
  size_t struct_size;
  const int32_t* prompt;
  size_t n_prompt;
  const edgellm_chat_message* messages;
  size_t n_messages;
  const edgellm_sampling_params* sampling; /* NULL: defaults */
  const edgellm_generate_options* options; /* NULL: defaults; on_token runs on the batch's thread */
  edgellm_generate_result* result;         /* NULL, or where the answer goes (set its struct_size);
                                              valid until the batch's next call or free */
  edgellm_status status;                   /* out: this item's outcome */
} edgellm_batch_item;

/* Generates every item's answer, all decoded together. Every item is checked first (prompt,
 * conversation, options, sampling): if one is bad nothing runs and its error is returned, naming
 * items[i] (EDGELLM_ERR_TEMPLATE when its conversation fails to render). Otherwise each item's
 * status says how it ended and the call returns EDGELLM_OK, or the first failed item's status.
 * Greedy answers are the same tokens edgellm_generate gives for the same prompt. */
EDGELLM_API edgellm_status edgellm_batch_generate(edgellm_batch* batch, edgellm_batch_item* items, size_t n_items);

typedef struct edgellm_batch_stats {
  size_t struct_size;
  uint64_t passes; /* forward passes run since the batch was created */
  uint64_t tokens; /* tokens in them (prompt and generated) */
  int32_t n_seq;
} edgellm_batch_stats;
EDGELLM_API edgellm_status edgellm_batch_get_stats(const edgellm_batch* batch, edgellm_batch_stats* stats);

/* ---- LoRA adapters ----------------------------------------------------------------------- */

/* A LoRA adapter in llama.cpp's GGUF layout, checked against the model (architecture, layers,
 * shapes). Applied beside the weights, never merged: sessions with different adapters share one
 * model. EDGELLM_ERR_IO when the file cannot be opened, EDGELLM_ERR_MODEL_FORMAT when it is not
 * an adapter for this model; EDGELLM_ERR_INVALID_ARGUMENT on a sentence-embedding model. */
typedef struct edgellm_lora edgellm_lora;
EDGELLM_API edgellm_status edgellm_lora_load(const edgellm_model* model, const char* path, edgellm_lora** out_lora);
/* NULL is allowed. Sessions that use the adapter keep it alive until they drop it. */
EDGELLM_API void edgellm_lora_free(edgellm_lora* lora);
/* The adapters the session generates with from now on, each with its scale (summed when several;
 * n = 0: the base model). A set other than the current one empties the session's cache (its
 * tokens were computed under other weights). An adapter loaded for another model handle, or a
 * scale that is not finite, is EDGELLM_ERR_INVALID_ARGUMENT. Saved states do not record it. */
EDGELLM_API edgellm_status edgellm_session_set_lora(edgellm_session* session, const edgellm_lora* const* adapters,
                                                    const float* scales, size_t n);

/* ---- embeddings -------------------------------------------------------------------------- */

/* One text's embedding from the model alone. A sentence-embedding model (embedding_only) runs its
 * own encoder and pooling ([CLS] text [SEP]; its vectors are unit length whatever normalize says);
 * a text generator gives edgellm_embed's vector, on a cache of its own sized to the text. Writes
 * edgellm_model_info.n_embd floats; EDGELLM_ERR_BUFFER_TOO_SMALL with *n_out = n_embd if max_out
 * is smaller; EDGELLM_ERR_INVALID_ARGUMENT for a text longer than the model's positions. */
EDGELLM_API edgellm_status edgellm_model_embed(edgellm_model* model, const char* text, size_t text_len,
                                               bool normalize, float* out, size_t max_out, size_t* n_out);

/* The mean of the final hidden states over the text's tokens (BOS added as the model asks),
 * scaled to unit length when normalize. Writes n_embd floats (edgellm_model_info.n_embd);
 * EDGELLM_ERR_BUFFER_TOO_SMALL with *n_out = n_embd if max_out is smaller. Uses the session's
 * cache, which it leaves empty. */
EDGELLM_API edgellm_status edgellm_embed(edgellm_session* session, const char* text, size_t text_len,
                                         bool normalize, float* out, size_t max_out, size_t* n_out);

/* ---- hybrid device/cloud routing -------------------------------------------------------- */

/* The orchestrator of `edgellm serve --policy`, in-process: per chat it scans the messages for
 * personal data, decides device or cloud under the policy, redacts what goes to the cloud and
 * restores the answer, judges a device answer's confidence and may escalate it, falls back to the
 * device when the cloud fails, and writes the audit log (docs/hybrid.md). The app needs no server.
 * policy_json: a policy object as in docs/hybrid.md ({"mode": "prefer-local", "cloud":
 * {"base_url": "https://host/v1", "model": "...", "api_key_env": "VAR"}, "privacy": ...}).
 * device_n_ctx: the device's context per request (0: unknown), unless the policy's local.n_ctx
 * says. EDGELLM_ERR_INVALID_ARGUMENT names a bad key or value; EDGELLM_ERR_IO when the audit log
 * cannot be opened; EDGELLM_ERR_UNSUPPORTED in a library built without routing. */
typedef struct edgellm_router edgellm_router;
EDGELLM_API edgellm_status edgellm_router_create(const char* policy_json, int32_t device_n_ctx,
                                                 edgellm_router** out_router);
/* NULL is allowed. No routed chat may be running on it. */
EDGELLM_API void edgellm_router_free(edgellm_router* router);

typedef enum edgellm_tier {
  EDGELLM_TIER_DEVICE = 0,
  EDGELLM_TIER_CLOUD = 1
} edgellm_tier;

typedef struct edgellm_routed_result {
  size_t struct_size;
  edgellm_tier tier; /* who answered */
  edgellm_finish_reason finish_reason;
  const char* text; /* the answer (restored when it was redacted); valid until the session's next
                       generation or free, as are the two strings below */
  size_t text_len;
  const char* route_json;      /* the route record, JSON (docs/hybrid.md): tier, reason, notes,
                                  mode, redacted, escalated, fallback, cloud_error, latency, scores */
  const char* tool_calls_json; /* the cloud's tool calls (OpenAI's array), or "" */
  int64_t prompt_tokens;       /* as counted by the tier that answered (-1: unknown) */
  int64_t completion_tokens;
} edgellm_routed_result;

/* edgellm_chat under the router's policy: the device generates with `session` (its sampling
 * parameters, options' stop strings, max_tokens and JSON schema), the cloud gets the messages with
 * temperature, top_p, max_tokens and stop. options->on_token receives the text as it reaches the
 * app, with token = -1 (it may be cloud text; a device answer the policy judges before showing it
 * arrives whole once judged); returning false cancels. result may be NULL. */
EDGELLM_API edgellm_status edgellm_chat_routed(edgellm_router* router, edgellm_session* session,
                                               const edgellm_chat_message* messages, size_t n_messages,
                                               const edgellm_generate_options* options,
                                               edgellm_routed_result* result);

#ifdef __cplusplus
}
#endif

#endif /* EDGELLM_H */
