#define _POSIX_C_SOURCE 200809L /* mkstemp, pthreads, access */
/* Tests of the C API, compiled as C against libedgellm.so.
 *   capi_test basic   no model needed: versions, status names, option structs, NULL handles,
 *                     bad and corrupt files, the thread-local error
 *   capi_test model   on SmolLM2-135M (EDGELLM_TEST_MODEL, or the model cache); exits 77
 *                     (skipped) when the file is absent
 *   capi_test lora MODEL ADAPTER        LoRA adapters (tests/python/test_capi.py writes one)
 *   capi_test embedder BERT_GGUF TEXT   a sentence-embedding model; prints TEXT's vector as
 *                     one JSON array on stdout (test_capi.py compares it with `edgellm embed`) */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "capi_test.h"

int g_failures = 0;
int g_checks = 0;

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CAPI_TEST_HAS_ASAN 1
#endif
#endif
#ifndef CAPI_TEST_HAS_ASAN
#define CAPI_TEST_HAS_ASAN 0
#endif

/* ---- basic ---------------------------------------------------------------------------------- */

static void* error_on_other_thread(void* arg) {
  (void)arg;
  /* Nothing failed on this thread yet. */
  return (void*)(intptr_t)(edgellm_last_error()[0] == '\0');
}

static void test_versions_and_names(void) {
  CHECK(edgellm_api_version() == EDGELLM_API_VERSION);
  CHECK(strlen(edgellm_version()) >= 5);
  CHECK(!strcmp(edgellm_status_name(EDGELLM_OK), "EDGELLM_OK"));
  CHECK(!strcmp(edgellm_status_name(EDGELLM_ERR_IO), "EDGELLM_ERR_IO"));
  CHECK(!strcmp(edgellm_status_name(EDGELLM_ERR_INTERNAL), "EDGELLM_ERR_INTERNAL"));
  CHECK(!strcmp(edgellm_status_name(EDGELLM_ERR_BAD_STATE), "EDGELLM_ERR_BAD_STATE"));
  CHECK(!strcmp(edgellm_status_name((edgellm_status)99), "EDGELLM_ERR_UNKNOWN_STATUS"));
}

static void test_option_structs(void) {
  edgellm_model_options mo;
  CHECK_OK(edgellm_model_options_init(&mo, sizeof mo));
  CHECK(mo.struct_size == sizeof mo && mo.n_threads == 0);
  edgellm_session_options so;
  CHECK_OK(edgellm_session_options_init(&so, sizeof so));
  CHECK(so.n_ctx == 4096 && so.type_k == EDGELLM_KV_F32 && so.type_v == EDGELLM_KV_F32 && so.sampling == NULL);
  edgellm_sampling_params sp;
  CHECK_OK(edgellm_sampling_params_init(&sp, sizeof sp));
  CHECK(fabsf(sp.temperature - 0.8f) < 1e-6f && sp.top_k == 40 && sp.repeat_last_n == 64);
  edgellm_generate_options go;
  CHECK_OK(edgellm_generate_options_init(&go, sizeof go));
  CHECK(go.max_tokens == 256 && go.on_token == NULL && go.json_schema == NULL && go.n_stop == 0);

  /* A struct from an older header (only struct_size): nothing past it is written. */
  unsigned char buf[sizeof(edgellm_session_options) + 8];
  memset(buf, 0xAB, sizeof buf);
  CHECK_OK(edgellm_session_options_init((edgellm_session_options*)buf, sizeof(size_t)));
  int untouched = 1;
  for (size_t i = sizeof(size_t); i < sizeof buf; i++) untouched &= buf[i] == 0xAB;
  CHECK(untouched);

  CHECK_STATUS(edgellm_model_options_init(NULL, sizeof mo), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_options_init(&mo, 0), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_sampling_params_init(&sp, 3), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_generate_options_init(NULL, sizeof go), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_options_init(NULL, sizeof so), EDGELLM_ERR_INVALID_ARGUMENT);
}

static void test_bad_files(void) {
  edgellm_model* m = (edgellm_model*)0x1;
  CHECK_STATUS(edgellm_model_load(NULL, NULL, &m), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("path");
  CHECK_STATUS(edgellm_model_load("/nonexistent/model.gguf", NULL, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_load("/nonexistent/model.gguf", NULL, &m), EDGELLM_ERR_IO);
  CHECK_ERROR_MENTIONS("/nonexistent/model.gguf");
  CHECK(m == (edgellm_model*)0x1); /* outputs untouched on failure */

  char path[] = "/tmp/edgellm_capi_corruptXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  const char junk[] = "GGUF but not really a model file";
  CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
  close(fd);
  CHECK_STATUS(edgellm_model_load(path, NULL, &m), EDGELLM_ERR_MODEL_FORMAT);
  CHECK_ERROR_MENTIONS(path);
  unlink(path);
  CHECK_STATUS(edgellm_model_load("/tmp", NULL, &m), EDGELLM_ERR_MODEL_FORMAT);

  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  mo.struct_size = 0;
  CHECK_STATUS(edgellm_model_load("/nonexistent/model.gguf", &mo, &m), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("struct_size");
  edgellm_model_options_init(&mo, sizeof mo);
  mo.n_threads = -1;
  CHECK_STATUS(edgellm_model_load("/nonexistent/model.gguf", &mo, &m), EDGELLM_ERR_INVALID_ARGUMENT);

  /* The error is per thread. */
  pthread_t t;
  void* clean = NULL;
  CHECK(pthread_create(&t, NULL, error_on_other_thread, NULL) == 0);
  pthread_join(t, &clean);
  CHECK(clean != NULL);
  CHECK(edgellm_last_error()[0] != '\0');
}

static void test_null_handles(void) {
  char buf[16];
  size_t len = 0;
  int32_t toks[4];
  float emb[4];
  edgellm_model_info info;
  info.struct_size = sizeof info;
  edgellm_session* s = NULL;
  edgellm_chat_message msg = {"user", "hi"};
  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);

  edgellm_model_free(NULL);
  edgellm_session_free(NULL);
  CHECK_STATUS(edgellm_model_get_info(NULL, &info), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("model");
  CHECK_STATUS(edgellm_model_meta(NULL, "general.name", buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK(!edgellm_token_is_eog(NULL, 0));
  CHECK_STATUS(edgellm_tokenize(NULL, "hi", 2, true, false, toks, 4, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_detokenize(NULL, toks, 0, false, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_chat_render(NULL, &msg, 1, true, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_create(NULL, NULL, &s), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_reset(NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_set_sampling(NULL, &sp), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK(edgellm_session_n_ctx(NULL) == 0);
  CHECK(edgellm_session_n_tokens(NULL) == 0);
  CHECK_STATUS(edgellm_generate(NULL, toks, 1, NULL, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_chat(NULL, &msg, 1, NULL, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_embed(NULL, "hi", 2, true, emb, 4, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_save(NULL, "/tmp/x"), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_load(NULL, "/tmp/x"), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_lora* lora = NULL;
  const edgellm_lora* set[1] = {NULL};
  float scale = 1.0f;
  edgellm_lora_free(NULL);
  CHECK_STATUS(edgellm_lora_load(NULL, "/tmp/x", &lora), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_set_lora(NULL, set, &scale, 0), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_embed(NULL, "hi", 2, true, emb, 4, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_router* router = NULL;
  edgellm_router_free(NULL);
  CHECK_STATUS(edgellm_router_create(NULL, 0, &router), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_router_create("{}", 0, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
#if CAPI_TEST_HYBRID
  CHECK_STATUS(edgellm_router_create("{\"mode\": ", 0, &router), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("policy_json");
  CHECK_STATUS(edgellm_router_create("{\"moed\": \"local-only\"}", 0, &router), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("moed");
  CHECK_STATUS(edgellm_router_create("{}", -1, &router), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_router_create("{\"audit\": {\"path\": \"/nonexistent/dir/audit.jsonl\"}}", 0, &router),
               EDGELLM_ERR_IO);
  CHECK(router == NULL);
  CHECK_OK(edgellm_router_create("{}", 0, &router));
  CHECK_STATUS(edgellm_chat_routed(router, NULL, &msg, 1, NULL, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_chat_routed(NULL, NULL, &msg, 1, NULL, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_router_free(router);
#else
  (void)router;
  test_router_unsupported();
#endif
}

/* ---- model ---------------------------------------------------------------------------------- */

edgellm_model* g_model;

static void test_info_and_meta(void) {
  edgellm_model_info info;
  info.struct_size = sizeof info;
  CHECK_OK(edgellm_model_get_info(g_model, &info));
  CHECK(!strcmp(info.architecture, "llama"));
  CHECK(info.n_vocab == 49152 && info.n_embd == 576 && info.n_layer == 30);
  CHECK(info.n_ctx_train > 0 && info.file_size > 50u * 1024 * 1024);
  CHECK(info.bos_token >= 0 && info.eos_token >= 0);
  CHECK(edgellm_token_is_eog(g_model, info.eos_token));
  CHECK(!edgellm_token_is_eog(g_model, -1) && !edgellm_token_is_eog(g_model, info.n_vocab));

  /* An older, shorter struct: fields past its size are not written. */
  edgellm_model_info small;
  memset(&small, 0xCD, sizeof small);
  small.struct_size = offsetof(edgellm_model_info, n_vocab);
  CHECK_OK(edgellm_model_get_info(g_model, &small));
  CHECK(!strcmp(small.architecture, "llama"));
  CHECK(small.n_vocab == (int32_t)0xCDCDCDCD);
  small.struct_size = 0;
  CHECK_STATUS(edgellm_model_get_info(g_model, &small), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_get_info(g_model, NULL), EDGELLM_ERR_INVALID_ARGUMENT);

  char buf[64];
  size_t len = 0;
  CHECK_STATUS(edgellm_model_meta(g_model, "general.architecture", NULL, 0, &len), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(len == 5);
  CHECK_STATUS(edgellm_model_meta(g_model, "general.architecture", buf, 5, &len), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK_ERROR_MENTIONS("6 bytes");
  CHECK_OK(edgellm_model_meta(g_model, "general.architecture", buf, 6, &len));
  CHECK(!strcmp(buf, "llama"));
  CHECK_OK(edgellm_model_meta(g_model, "llama.context_length", buf, sizeof buf, &len));
  CHECK(atoi(buf) == info.n_ctx_train);
  /* Arrays come as JSON. */
  CHECK_STATUS(edgellm_model_meta(g_model, "tokenizer.ggml.tokens", NULL, 0, &len), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(len > (size_t)info.n_vocab * 3);
  CHECK_STATUS(edgellm_model_meta(g_model, "no.such.key", buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("no.such.key");
  CHECK_STATUS(edgellm_model_meta(g_model, NULL, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_meta(g_model, "general.architecture", buf, sizeof buf, NULL),
               EDGELLM_ERR_INVALID_ARGUMENT);
}

static void test_tokens(void) {
  int32_t toks[64];
  size_t n = 0;
  const char* text = "Hello world, this is edgellm.";
  CHECK_OK(edgellm_tokenize(g_model, text, strlen(text), false, false, toks, 64, &n));
  CHECK(n > 3 && n < 20);
  size_t need = 0;
  CHECK_STATUS(edgellm_tokenize(g_model, text, strlen(text), false, false, toks, 2, &need),
               EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(need == n);
  CHECK_STATUS(edgellm_tokenize(g_model, text, strlen(text), false, false, NULL, 64, &need),
               EDGELLM_ERR_INVALID_ARGUMENT);
  char buf[128];
  size_t len = 0;
  CHECK_OK(edgellm_detokenize(g_model, toks, n, false, buf, sizeof buf, &len));
  CHECK(len == strlen(text) && !strcmp(buf, text));
  CHECK_STATUS(edgellm_detokenize(g_model, toks, n, false, buf, 4, &len), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(len == strlen(text));
  int32_t bad = 1 << 20;
  CHECK_STATUS(edgellm_detokenize(g_model, &bad, 1, false, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("out of range");

  /* Control tokens are parsed only when asked. */
  const char* ctl = "<|im_start|>";
  size_t n_special = 0, n_plain = 0;
  CHECK_OK(edgellm_tokenize(g_model, ctl, strlen(ctl), false, true, toks, 64, &n_special));
  CHECK_OK(edgellm_tokenize(g_model, ctl, strlen(ctl), false, false, toks, 64, &n_plain));
  CHECK(n_special == 1 && n_plain > 1);
  CHECK_OK(edgellm_tokenize(g_model, "", 0, false, false, NULL, 0, &n));
  CHECK(n == 0);
}

static void test_chat_render(void) {
  edgellm_chat_message msgs[2] = {{"system", "Be brief."}, {"user", "Hi there"}};
  char buf[512];
  size_t len = 0;
  CHECK_OK(edgellm_chat_render(g_model, msgs, 2, true, buf, sizeof buf, &len));
  CHECK(strstr(buf, "<|im_start|>user\nHi there<|im_end|>") != NULL);
  CHECK(len >= 22 && !strcmp(buf + len - 22, "<|im_start|>assistant\n"));
  size_t len2 = 0;
  CHECK_OK(edgellm_chat_render(g_model, msgs, 2, false, buf, sizeof buf, &len2));
  CHECK(len2 < len);
  CHECK_STATUS(edgellm_chat_render(g_model, msgs, 2, true, buf, 10, &len2), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(len2 == len);
  CHECK_STATUS(edgellm_chat_render(g_model, msgs, 0, true, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_chat_message bad = {"user", NULL};
  CHECK_STATUS(edgellm_chat_render(g_model, &bad, 1, true, buf, sizeof buf, &len), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("messages[0].content");
}

edgellm_session* new_session(int32_t n_ctx, float temperature) {
  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.temperature = temperature;
  edgellm_session_options so;
  edgellm_session_options_init(&so, sizeof so);
  so.n_ctx = n_ctx;
  so.sampling = &sp;
  edgellm_session* s = NULL;
  CHECK_OK(edgellm_session_create(g_model, &so, &s));
  return s;
}

static void test_sessions(void) {
  edgellm_session_options so;
  edgellm_session_options_init(&so, sizeof so);
  edgellm_session* s = NULL;
  so.n_ctx = 0;
  CHECK_STATUS(edgellm_session_create(g_model, &so, &s), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("n_ctx");
  so.n_ctx = 64;
  so.type_k = (edgellm_kv_type)42;
  CHECK_STATUS(edgellm_session_create(g_model, &so, &s), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("type_k");
  so.type_k = EDGELLM_KV_Q8_0;
  so.type_v = EDGELLM_KV_Q4_0;
  CHECK_STATUS(edgellm_session_create(g_model, &so, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_OK(edgellm_session_create(g_model, &so, &s));
  CHECK(edgellm_session_n_ctx(s) == 64 && edgellm_session_n_tokens(s) == 0);

  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.repeat_penalty = 0;
  CHECK_STATUS(edgellm_session_set_sampling(s, &sp), EDGELLM_ERR_INVALID_ARGUMENT);
  sp.repeat_penalty = 1;
  sp.temperature = NAN;
  CHECK_STATUS(edgellm_session_set_sampling(s, &sp), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_set_sampling(s, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  sp.temperature = 0;
  CHECK_OK(edgellm_session_set_sampling(s, &sp));
  edgellm_session_free(s);

  /* A cache of 2^31 positions (1.6 TB) cannot be reserved: a status, not a crash. ASan's
   * operator new aborts instead of throwing, so this runs in plain builds only. */
#if !defined(__SANITIZE_ADDRESS__) && !CAPI_TEST_HAS_ASAN
  so.type_k = so.type_v = EDGELLM_KV_F32;
  so.n_ctx = 2147483647;
  CHECK_STATUS(edgellm_session_create(g_model, &so, &s), EDGELLM_ERR_OUT_OF_MEMORY);
#endif
}

typedef struct {
  int calls;
  int stop_after;  /* return false at this call (0: never) */
  int32_t tokens[64];
  int n_tokens;    /* ids > -1 seen */
  char text[2048];
  size_t text_len;
} collector;

static bool collect(int32_t token, const char* text, size_t len, void* user_data) {
  collector* c = user_data;
  c->calls++;
  if (token >= 0 && c->n_tokens < 64) c->tokens[c->n_tokens++] = token;
  if (c->text_len + len < sizeof c->text) {
    memcpy(c->text + c->text_len, text, len);
    c->text_len += len;
    c->text[c->text_len] = '\0';
  }
  return c->stop_after == 0 || c->calls < c->stop_after;
}

const edgellm_chat_message k_question[1] = {{"user", "What is the capital of France?"}};

static void test_generate(void) {
  edgellm_session* s = new_session(512, 0.0f);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 12;
  collector c;
  memset(&c, 0, sizeof c);
  go.on_token = collect;
  go.user_data = &c;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  CHECK(r.n_tokens > 0 && r.n_tokens <= 12);
  CHECK(r.finish_reason == EDGELLM_FINISH_LENGTH || r.finish_reason == EDGELLM_FINISH_STOP);
  CHECK(r.text_len == strlen(r.text) && r.text_len > 0);
  CHECK(r.n_prompt > 5 && r.n_prompt_evaluated == r.n_prompt);
  /* The callback saw every token, in order, and all the text. */
  CHECK(c.n_tokens == r.n_tokens && !memcmp(c.tokens, r.tokens, sizeof(int32_t) * (size_t)r.n_tokens));
  CHECK(c.text_len == r.text_len && !strcmp(c.text, r.text));
  CHECK(edgellm_session_n_tokens(s) > r.n_prompt);

  /* The same conversation again: the cached prompt is reused, greedy gives the same answer. */
  char first[2048];
  snprintf(first, sizeof first, "%s", r.text);
  memset(&c, 0, sizeof c);
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  CHECK(r.n_prompt_evaluated < r.n_prompt);
  CHECK(!strcmp(r.text, first));

  /* Same prompt as tokens through edgellm_generate. */
  char rendered[1024];
  size_t len = 0;
  int32_t toks[256];
  size_t n = 0;
  CHECK_OK(edgellm_chat_render(g_model, k_question, 1, true, rendered, sizeof rendered, &len));
  CHECK_OK(edgellm_tokenize(g_model, rendered, len, true, true, toks, 256, &n));
  go.on_token = NULL;
  CHECK_OK(edgellm_generate(s, toks, n, &go, &r));
  CHECK(!strncmp(r.text, first, strlen(r.text)));

  /* Errors. */
  CHECK_STATUS(edgellm_generate(s, toks, 0, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("empty prompt");
  int32_t bad = -3;
  CHECK_STATUS(edgellm_generate(s, &bad, 1, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_generate(s, NULL, 3, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  const char* empty_stop[] = {""};
  go.stop = empty_stop;
  go.n_stop = 1;
  CHECK_STATUS(edgellm_chat(s, k_question, 1, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  go.stop = NULL;
  go.n_stop = 0;
  r.struct_size = 0;
  CHECK_STATUS(edgellm_chat(s, k_question, 1, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  r.struct_size = sizeof r;
  edgellm_session_free(s);

  /* A prompt longer than the context. */
  s = new_session(8, 0.0f);
  CHECK_STATUS(edgellm_chat(s, k_question, 1, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("context");
  edgellm_session_free(s);
}

static void test_callback_stops(void) {
  edgellm_session* s = new_session(512, 0.0f);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 40;
  go.ignore_eos = true;
  collector c;
  memset(&c, 0, sizeof c);
  c.stop_after = 3;
  go.on_token = collect;
  go.user_data = &c;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  CHECK(r.finish_reason == EDGELLM_FINISH_CANCELLED);
  CHECK(c.calls == 3 && r.n_tokens == 3);
  edgellm_session_free(s);
}

static void test_stop_string_and_sampling(void) {
  edgellm_session* s = new_session(512, 0.0f);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 12;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  char first[2048];
  snprintf(first, sizeof first, "%s", r.text);
  /* Stop at the answer's second word: the text ends before it. */
  const char* space = strchr(first + 1, ' ');
  if (space && space[1]) {
    char stop[8] = {0};
    strncpy(stop, space + 1, 3);
    const char* stops[] = {stop};
    go.stop = stops;
    go.n_stop = 1;
    CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
    CHECK(r.finish_reason == EDGELLM_FINISH_STOP);
    CHECK(strstr(r.text, stop) == NULL && !strncmp(first, r.text, r.text_len));
    go.stop = NULL;
    go.n_stop = 0;
  }
  /* A seeded sampler repeats itself. */
  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.temperature = 1.0f;
  sp.seed = 1234;
  CHECK_OK(edgellm_session_set_sampling(s, &sp));
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  char a[2048];
  snprintf(a, sizeof a, "%s", r.text);
  CHECK_OK(edgellm_session_reset(s));
  CHECK(edgellm_session_n_tokens(s) == 0);
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  CHECK(!strcmp(a, r.text));
  edgellm_session_free(s);
}

static void test_json_schema(void) {
  edgellm_session* s = new_session(512, 0.0f);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 48;
  go.json_schema =
      "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":20}},"
      "\"required\":[\"city\"],\"additionalProperties\":false}";
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &r));
  CHECK(r.text[0] == '{' && strstr(r.text, "\"city\"") != NULL);
  CHECK(r.finish_reason != EDGELLM_FINISH_STOP || r.text[r.text_len - 1] == '}');
  go.json_schema = "{\"type\": ";
  CHECK_STATUS(edgellm_chat(s, k_question, 1, &go, &r), EDGELLM_ERR_SCHEMA);
  CHECK_ERROR_MENTIONS("json_schema");
  go.json_schema = "{\"not\": {\"type\": \"string\"}}";
  CHECK_STATUS(edgellm_chat(s, k_question, 1, &go, &r), EDGELLM_ERR_SCHEMA);
  CHECK_ERROR_MENTIONS("not");
  edgellm_session_free(s);
}

static void test_embed(void) {
  edgellm_session* s = new_session(256, 0.0f);
  float a[576], b[576], c[576];
  size_t n = 0;
  CHECK_STATUS(edgellm_embed(s, "hello", 5, true, a, 10, &n), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 576);
  CHECK_OK(edgellm_embed(s, "The cat sat on the mat.", 23, true, a, 576, &n));
  CHECK(n == 576);
  double norm = 0;
  for (int i = 0; i < 576; i++) norm += (double)a[i] * a[i];
  CHECK(fabs(norm - 1.0) < 1e-4);
  CHECK_OK(edgellm_embed(s, "The cat sat on the mat.", 23, true, b, 576, &n));
  CHECK(!memcmp(a, b, sizeof a));
  CHECK_OK(edgellm_embed(s, "Quarterly revenue grew by four percent.", 39, true, c, 576, &n));
  double dot = 0;
  for (int i = 0; i < 576; i++) dot += (double)a[i] * c[i];
  CHECK(dot < 0.999);
  CHECK(edgellm_session_n_tokens(s) == 0);
  CHECK_OK(edgellm_embed(s, "unnormalized", 12, false, b, 576, &n));
  norm = 0;
  for (int i = 0; i < 576; i++) norm += (double)b[i] * b[i];
  CHECK(fabs(norm - 1.0) > 1e-3);
  CHECK_STATUS(edgellm_embed(s, "hello", 5, true, NULL, 576, &n), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_session_free(s);
}

/* The model's own embedding: for a text generator, the session's vector on a cache of its own. */
static void test_model_embed(void) {
  edgellm_session* s = new_session(256, 0.0f);
  float a[576], b[576];
  size_t n = 0;
  CHECK_STATUS(edgellm_model_embed(g_model, "hello", 5, true, a, 575, &n), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 576);
  CHECK_OK(edgellm_model_embed(g_model, "The cat sat on the mat.", 23, true, a, 576, &n));
  CHECK_OK(edgellm_embed(s, "The cat sat on the mat.", 23, true, b, 576, &n));
  double diff = 0;
  for (int i = 0; i < 576; i++) diff = fmax(diff, fabs((double)a[i] - b[i]));
  CHECK(diff < 1e-5);
  CHECK_STATUS(edgellm_model_embed(g_model, "hello", 5, true, NULL, 576, &n), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_embed(g_model, "hello", 5, true, a, 576, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_session_free(s);
}

/* Adapter files that are missing or are not adapters, and bad adapter sets. */
static void test_lora_errors(const char* model_file) {
  edgellm_lora* lora = NULL;
  CHECK_STATUS(edgellm_lora_load(g_model, "/nonexistent/adapter.gguf", &lora), EDGELLM_ERR_IO);
  CHECK_ERROR_MENTIONS("/nonexistent/adapter.gguf");
  CHECK_STATUS(edgellm_lora_load(g_model, model_file, &lora), EDGELLM_ERR_MODEL_FORMAT);
  CHECK(lora == NULL);
  CHECK_STATUS(edgellm_lora_load(g_model, NULL, &lora), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_lora_load(g_model, model_file, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_session* s = new_session(64, 0.0f);
  const edgellm_lora* set[1] = {NULL};
  float scale = 1.0f;
  CHECK_OK(edgellm_session_set_lora(s, NULL, NULL, 0)); /* the base model */
  CHECK_STATUS(edgellm_session_set_lora(s, set, &scale, 1), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("adapters[0]");
  CHECK_STATUS(edgellm_session_set_lora(s, NULL, &scale, 1), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_session_free(s);
}

/* A conversation saved from one session and resumed in another. */
static void test_save_restore(void) {
  char path[] = "/tmp/edgellm_capi_stateXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 12;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  edgellm_session* a = new_session(512, 0.0f);
  CHECK_OK(edgellm_chat(a, k_question, 1, &go, &r));
  char answer[2048];
  snprintf(answer, sizeof answer, "%s", r.text);
  const int32_t held = edgellm_session_n_tokens(a);
  CHECK_OK(edgellm_session_save(a, path));
  CHECK_STATUS(edgellm_session_save(a, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_save(a, "/nonexistent/dir/state"), EDGELLM_ERR_IO);

  edgellm_session* b = new_session(512, 0.0f);
  CHECK_OK(edgellm_session_load(b, path));
  CHECK(edgellm_session_n_tokens(b) == held);
  /* The next turn runs only its new tokens in both, and gives the same answer. */
  edgellm_chat_message turn2[3] = {k_question[0], {"assistant", answer}, {"user", "And of Germany?"}};
  edgellm_generate_result ra, rb;
  ra.struct_size = rb.struct_size = sizeof ra;
  CHECK_OK(edgellm_chat(a, turn2, 3, &go, &ra));
  char text_a[2048];
  snprintf(text_a, sizeof text_a, "%s", ra.text);
  CHECK_OK(edgellm_chat(b, turn2, 3, &go, &rb));
  CHECK(rb.n_prompt_evaluated == ra.n_prompt_evaluated && rb.n_prompt_evaluated < rb.n_prompt);
  CHECK(!strcmp(text_a, rb.text));

  /* States that do not fit: the session is left empty. */
  CHECK_STATUS(edgellm_session_load(b, "/nonexistent/state"), EDGELLM_ERR_IO);
  edgellm_session* small = new_session(16, 0.0f);
  CHECK_STATUS(edgellm_session_load(small, path), EDGELLM_ERR_BAD_STATE);
  CHECK_ERROR_MENTIONS("context");
  CHECK(edgellm_session_n_tokens(small) == 0);
  edgellm_session_free(small);
  edgellm_session_options so;
  edgellm_session_options_init(&so, sizeof so);
  so.n_ctx = 512;
  so.type_k = EDGELLM_KV_Q8_0;
  edgellm_session* q8 = NULL;
  CHECK_OK(edgellm_session_create(g_model, &so, &q8));
  CHECK_STATUS(edgellm_session_load(q8, path), EDGELLM_ERR_BAD_STATE);
  CHECK_ERROR_MENTIONS("KV cache types");
  edgellm_session_free(q8);
  /* Truncated, and not a state at all. */
  FILE* f = fopen(path, "rb");
  CHECK(f != NULL);
  static char bytes[1 << 22];
  size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
  if (f) fclose(f);
  CHECK(n > 1000 && n < sizeof bytes);
  f = fopen(path, "wb");
  if (f) {
    fwrite(bytes, 1, n / 2, f);
    fclose(f);
  }
  CHECK_STATUS(edgellm_session_load(b, path), EDGELLM_ERR_BAD_STATE);
  CHECK_ERROR_MENTIONS("truncated");
  CHECK(edgellm_session_n_tokens(b) == 0);
  f = fopen(path, "wb");
  if (f) {
    fputs("not a session state", f);
    fclose(f);
  }
  CHECK_STATUS(edgellm_session_load(b, path), EDGELLM_ERR_BAD_STATE);
  unlink(path);
  edgellm_session_free(a);
  edgellm_session_free(b);
}

/* Two sessions over one model, generating at the same time on two threads. */
typedef struct {
  edgellm_session* session;
  char text[2048];
  edgellm_status status;
} worker;

static void* generate_on_thread(void* arg) {
  worker* w = arg;
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 16;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  w->status = edgellm_chat(w->session, k_question, 1, &go, &r);
  if (w->status == EDGELLM_OK) snprintf(w->text, sizeof w->text, "%s", r.text);
  return NULL;
}

static void test_two_threads(void) {
  worker ref = {new_session(256, 0.0f), "", EDGELLM_OK};
  generate_on_thread(&ref);
  CHECK_OK(ref.status);
  worker w[2] = {{new_session(256, 0.0f), "", EDGELLM_OK}, {new_session(256, 0.0f), "", EDGELLM_OK}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, generate_on_thread, &w[i]) == 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 2; i++) {
    CHECK_OK(w[i].status);
    CHECK(!strcmp(w[i].text, ref.text));
    edgellm_session_free(w[i].session);
  }
  edgellm_session_free(ref.session);
}

/* ---- lora / embedder (files written by tests/python/test_capi.py) -------------------------- */

static bool load_model(const char* path) {
  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  mo.n_threads = 2;
  if (edgellm_model_load(path, &mo, &g_model) != EDGELLM_OK) {
    fprintf(stderr, "cannot load %s: %s\n", path, edgellm_last_error());
    return false;
  }
  return true;
}

/* Greedy tokens of the question under the session's current adapters. */
static int32_t greedy(edgellm_session* s, int32_t* out, int32_t max) {
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = max;
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  if (edgellm_chat(s, k_question, 1, &go, &r) != EDGELLM_OK) return -1;
  memcpy(out, r.tokens, (size_t)r.n_tokens * sizeof(int32_t));
  return r.n_tokens;
}

static bool same_tokens(const int32_t* a, int32_t na, const int32_t* b, int32_t nb) {
  return na == nb && na >= 0 && !memcmp(a, b, (size_t)na * sizeof(int32_t));
}

/* An adapter changes the answer, scale 0 is the base exactly, the set can be dropped again, an
 * adapter freed while a session uses it stays valid there, and one from another model handle is
 * refused. */
static void test_lora(const char* model_file, const char* adapter) {
  enum { N = 16 };
  int32_t base[N], tuned[N], zero[N], again[N], after_free[N];
  edgellm_lora* lora = NULL;
  CHECK_OK(edgellm_lora_load(g_model, adapter, &lora));
  edgellm_session* s = new_session(256, 0.0f);
  const int32_t nb = greedy(s, base, N);
  const edgellm_lora* set[2] = {lora, lora};
  float scales[2] = {1.0f, 0.0f};
  CHECK_OK(edgellm_session_set_lora(s, set, scales, 1));
  CHECK(edgellm_session_n_tokens(s) == 0); /* the cache was computed under other weights */
  const int32_t nt = greedy(s, tuned, N);
  CHECK(nb > 0 && nt > 0);
  CHECK(!same_tokens(base, nb, tuned, nt));
  CHECK_OK(edgellm_session_set_lora(s, set + 1, scales + 1, 1));
  CHECK(same_tokens(base, nb, zero, greedy(s, zero, N)));
  CHECK_OK(edgellm_session_set_lora(s, NULL, NULL, 0));
  CHECK(same_tokens(base, nb, again, greedy(s, again, N)));
  scales[1] = NAN;
  CHECK_STATUS(edgellm_session_set_lora(s, set, scales, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("scales[1]");
  CHECK_OK(edgellm_session_set_lora(s, set, scales, 1));
  edgellm_lora_free(lora);
  CHECK(same_tokens(tuned, nt, after_free, greedy(s, after_free, N)));
  edgellm_session_free(s);

  /* The same file loaded through another handle of the same model is still another model's. */
  edgellm_model* other = NULL;
  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  mo.n_threads = 1;
  edgellm_lora* foreign = NULL;
  CHECK_OK(edgellm_model_load(model_file, &mo, &other));
  if (other) {
    CHECK_OK(edgellm_lora_load(other, adapter, &foreign));
    s = new_session(64, 0.0f);
    const edgellm_lora* fset[1] = {foreign};
    CHECK_STATUS(edgellm_session_set_lora(s, fset, scales, 1), EDGELLM_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("another model");
    edgellm_session_free(s);
    edgellm_lora_free(foreign);
    edgellm_model_free(other);
  }
}

/* A sentence-embedding model: metadata and tokens work, sessions and templates are refused
 * with a message saying why, and the vector is unit length. */
static void test_embedder(const char* text) {
  edgellm_model_info info;
  info.struct_size = sizeof info;
  CHECK_OK(edgellm_model_get_info(g_model, &info));
  CHECK(info.embedding_only);
  CHECK(!strcmp(info.architecture, "bert"));
  CHECK(info.n_embd > 0 && info.n_embd <= 4096);
  int32_t toks[256];
  size_t n = 0;
  CHECK_OK(edgellm_tokenize(g_model, "the cat", 7, true, false, toks, 256, &n));
  CHECK(n >= 2);
  edgellm_session* s = NULL;
  CHECK_STATUS(edgellm_session_create(g_model, NULL, &s), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("sentence-embedding");
  edgellm_chat_message msg = {"user", "hi"};
  char buf[64];
  CHECK_STATUS(edgellm_chat_render(g_model, &msg, 1, true, buf, sizeof buf, &n), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_lora* lora = NULL;
  CHECK_STATUS(edgellm_lora_load(g_model, "/tmp/x.gguf", &lora), EDGELLM_ERR_INVALID_ARGUMENT);
  float small[2];
  CHECK_STATUS(edgellm_model_embed(g_model, text, strlen(text), true, small, 2, &n), EDGELLM_ERR_BUFFER_TOO_SMALL);
  CHECK(n == (size_t)info.n_embd);
  float* v = malloc((size_t)info.n_embd * sizeof(float));
  CHECK_OK(edgellm_model_embed(g_model, text, strlen(text), false, v, (size_t)info.n_embd, &n));
  double norm = 0;
  for (int32_t i = 0; i < info.n_embd; i++) norm += (double)v[i] * v[i];
  CHECK(fabs(norm - 1.0) < 1e-4);
  printf("[");
  for (int32_t i = 0; i < info.n_embd; i++) printf("%s%.9g", i ? "," : "", v[i]);
  printf("]\n");
  /* Longer than the model's positions. */
  size_t big = (size_t)info.n_ctx_train * 6 + 16;
  char* longtext = malloc(big + 1);
  for (size_t i = 0; i < big; i += 2) memcpy(longtext + i, "a ", 2);
  longtext[big] = 0;
  CHECK_STATUS(edgellm_model_embed(g_model, longtext, big, true, v, (size_t)info.n_embd, &n),
               EDGELLM_ERR_INVALID_ARGUMENT);
  free(longtext);
  free(v);
}

/* ---- batch ------------------------------------------------------------------------------- */

static const edgellm_chat_message k_batch_q[3][1] = {
    {{"user", "What is the capital of France?"}},
    {{"user", "Write a haiku about trains."}},
    {{"user", "List three prime numbers."}}};

static void test_batch(void) {
  edgellm_batch_options bo;
  CHECK_OK(edgellm_batch_options_init(&bo, sizeof bo));
  CHECK(bo.n_seq == 4 && bo.n_ctx == 4096 && bo.n_batch == 256);
  edgellm_batch* b = NULL;
  bo.n_seq = 0;
  CHECK_STATUS(edgellm_batch_create(g_model, &bo, &b), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("n_seq");
  bo.n_seq = 3;
  bo.n_ctx = 256;
  CHECK_STATUS(edgellm_batch_create(NULL, &bo, &b), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_batch_create(g_model, &bo, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_OK(edgellm_batch_create(g_model, &bo, &b));

  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.temperature = 0;
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 12;
  go.ignore_eos = true; /* long enough answers for the pass count below to tell batching apart */

  /* Each conversation alone through a session: the reference answers. */
  int32_t ref[3][12];
  int32_t n_ref[3];
  for (int i = 0; i < 3; ++i) {
    edgellm_session* s = new_session(256, 0.0f);
    edgellm_generate_result r;
    r.struct_size = sizeof r;
    CHECK_OK(edgellm_chat(s, k_batch_q[i], 1, &go, &r));
    n_ref[i] = r.n_tokens;
    memcpy(ref[i], r.tokens, sizeof(int32_t) * (size_t)r.n_tokens);
    edgellm_session_free(s);
  }

  /* The three together; the third stops itself through its callback after 4 tokens. */
  collector c;
  memset(&c, 0, sizeof c);
  c.stop_after = 4;
  edgellm_generate_options go_stop = go;
  go_stop.on_token = collect;
  go_stop.user_data = &c;
  edgellm_generate_result res[3];
  edgellm_batch_item items[3];
  for (int i = 0; i < 3; ++i) {
    memset(&items[i], 0, sizeof items[i]);
    items[i].struct_size = sizeof items[i];
    items[i].messages = k_batch_q[i];
    items[i].n_messages = 1;
    items[i].sampling = &sp;
    items[i].options = i == 2 ? &go_stop : &go;
    res[i].struct_size = sizeof res[i];
    items[i].result = &res[i];
    items[i].status = EDGELLM_ERR_INTERNAL;
  }
  edgellm_batch_stats before, after;
  before.struct_size = after.struct_size = sizeof before;
  CHECK_OK(edgellm_batch_get_stats(b, &before));
  CHECK(before.n_seq == 3 && before.passes == 0);
  CHECK_OK(edgellm_batch_generate(b, items, 3));
  CHECK_OK(edgellm_batch_get_stats(b, &after));
  for (int i = 0; i < 2; ++i) {
    CHECK(items[i].status == EDGELLM_OK);
    CHECK(res[i].finish_reason != EDGELLM_FINISH_CANCELLED);
    CHECK(same_tokens(res[i].tokens, res[i].n_tokens, ref[i], n_ref[i]));
    CHECK(res[i].text_len == strlen(res[i].text) && res[i].n_prompt > 5);
  }
  CHECK(items[2].status == EDGELLM_OK && res[2].finish_reason == EDGELLM_FINISH_CANCELLED);
  CHECK(c.calls == 4 && res[2].n_tokens == 4 && same_tokens(res[2].tokens, 4, ref[2], 4));
  /* Decoded together: one after another, every generated token would cost a pass of its own. */
  const uint64_t passes = after.passes - before.passes;
  const int32_t longest = res[0].n_tokens > res[1].n_tokens ? res[0].n_tokens : res[1].n_tokens;
  CHECK(longest >= 8);
  CHECK(passes >= (uint64_t)longest && passes < (uint64_t)(res[0].n_tokens + res[1].n_tokens + res[2].n_tokens));
  CHECK(after.tokens - before.tokens >= (uint64_t)(res[0].n_prompt + res[1].n_prompt + res[2].n_prompt));

  /* More items than sequences: the rest wait for a free one. Prompt tokens work too, and a
   * prompt a sequence already holds is reused. */
  char rendered[1024];
  size_t len = 0;
  int32_t toks[256];
  size_t n = 0;
  CHECK_OK(edgellm_chat_render(g_model, k_batch_q[0], 1, true, rendered, sizeof rendered, &len));
  CHECK_OK(edgellm_tokenize(g_model, rendered, len, true, true, toks, 256, &n));
  edgellm_batch_item many[5];
  edgellm_generate_result mres[5];
  for (int i = 0; i < 5; ++i) {
    memset(&many[i], 0, sizeof many[i]);
    many[i].struct_size = sizeof many[i];
    many[i].prompt = toks;
    many[i].n_prompt = n;
    many[i].sampling = &sp;
    many[i].options = &go;
    mres[i].struct_size = sizeof mres[i];
    many[i].result = &mres[i];
  }
  CHECK_OK(edgellm_batch_generate(b, many, 5));
  for (int i = 0; i < 5; ++i) {
    CHECK(many[i].status == EDGELLM_OK);
    CHECK(same_tokens(mres[i].tokens, mres[i].n_tokens, ref[0], n_ref[0]));
  }
  CHECK(mres[4].n_prompt_evaluated < mres[4].n_prompt);
  CHECK_OK(edgellm_batch_generate(b, NULL, 0));

  /* A bad item: nothing runs, the error names it. */
  int32_t bad_tok = -1;
  many[1].prompt = &bad_tok;
  many[1].n_prompt = 1;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("items[1]");
  many[1].prompt = NULL;
  many[1].n_prompt = 0;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("no prompt");
  edgellm_chat_message no_content = {"user", NULL};
  many[1].messages = &no_content;
  many[1].n_messages = 1;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("messages[0].content");
  int32_t long_prompt[300];
  for (int i = 0; i < 300; ++i) long_prompt[i] = toks[i % (int)n];
  many[1].prompt = long_prompt;
  many[1].n_prompt = 300;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("context");
  many[1].prompt = toks;
  many[1].n_prompt = n;
  many[1].struct_size = 0;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("struct_size");
  many[1].struct_size = sizeof many[1];
  const char* empty_stop[] = {""};
  edgellm_generate_options go_bad = go;
  go_bad.stop = empty_stop;
  go_bad.n_stop = 1;
  many[1].options = &go_bad;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  many[1].options = &go;
  go_bad = go;
  go_bad.json_schema = "{\"type\": 3}";
  many[1].options = &go_bad;
  CHECK_STATUS(edgellm_batch_generate(b, many, 2), EDGELLM_ERR_SCHEMA);
  CHECK_ERROR_MENTIONS("items[1]");
  CHECK_STATUS(edgellm_batch_generate(NULL, many, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_batch_generate(b, NULL, 2), EDGELLM_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_batch_get_stats(b, NULL), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_batch_free(b);
  edgellm_batch_free(NULL);
}

/* ---- a chat template that fails ------------------------------------------------------------ */

/* Copies the GGUF at `src` to a temporary file whose tokenizer.chat_template is replaced by one
 * of the same length that refuses system turns (the file's layout is unchanged). Returns 0 and
 * the path in `out`, or -1. */
static int write_refusing_template_copy(const char* src, char* out, size_t out_size) {
  static const char k_tpl[] =
      "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('this model takes no "
      "system turns') }}{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  static const char k_key[] = "tokenizer.chat_template";
  FILE* in = fopen(src, "rb");
  if (!in) return -1;
  snprintf(out, out_size, "%s/edgellm-capi-template-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  int fd = mkstemp(out);
  FILE* o = fd >= 0 ? fdopen(fd, "wb") : NULL;
  const size_t head_size = 32u << 20; /* the metadata (vocabulary included) lies in front */
  unsigned char* buf = malloc(head_size);
  size_t got = buf ? fread(buf, 1, head_size, in) : 0;
  int found = 0;
  for (size_t i = 8; buf && i + sizeof k_key + 12 < got && !found; ++i) {
    uint64_t klen;
    memcpy(&klen, buf + i - 8, 8);
    if (klen != sizeof k_key - 1 || memcmp(buf + i, k_key, sizeof k_key - 1)) continue;
    const size_t at = i + sizeof k_key - 1;
    uint32_t type;
    uint64_t len;
    memcpy(&type, buf + at, 4);
    memcpy(&len, buf + at + 4, 8);
    if (type != 8 || len < sizeof k_tpl + 4 || at + 12 + len > got) break;
    /* The new template, then a comment padding it to the old length. */
    unsigned char* t = buf + at + 12;
    memcpy(t, k_tpl, sizeof k_tpl - 1);
    t[sizeof k_tpl - 1] = '{';
    t[sizeof k_tpl] = '#';
    memset(t + sizeof k_tpl + 1, ' ', len - (sizeof k_tpl - 1) - 4);
    t[len - 2] = '#';
    t[len - 1] = '}';
    found = 1;
  }
  int ok = found && o && fwrite(buf, 1, got, o) == got;
  while (ok && got == head_size) {
    got = fread(buf, 1, head_size, in);
    ok = fwrite(buf, 1, got, o) == got;
  }
  free(buf);
  fclose(in);
  if (o) fclose(o);
  if (!ok) {
    if (fd >= 0) unlink(out);
    return -1;
  }
  return 0;
}

static void test_template_error(const char* model_file) {
  char path[4096];
  CHECK(write_refusing_template_copy(model_file, path, sizeof path) == 0);
  edgellm_model* m = NULL;
  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  mo.n_threads = 2;
  CHECK_OK(edgellm_model_load(path, &mo, &m));
  unlink(path);
  if (!m) return;
  const edgellm_chat_message with_system[2] = {{"system", "Be brief."}, {"user", "Hi"}};
  char buf[512];
  size_t len = 0;
  /* Without a system turn the template renders. */
  CHECK_OK(edgellm_chat_render(m, with_system + 1, 1, true, buf, sizeof buf, &len));
  CHECK(!strcmp(buf, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
  /* With one it raises: EDGELLM_ERR_TEMPLATE, and the template's own message. */
  CHECK_STATUS(edgellm_chat_render(m, with_system, 2, true, buf, sizeof buf, &len), EDGELLM_ERR_TEMPLATE);
  CHECK_ERROR_MENTIONS("chat template");
  CHECK_ERROR_MENTIONS("this model takes no system turns");
  edgellm_session* s = NULL;
  edgellm_session_options so;
  edgellm_session_options_init(&so, sizeof so);
  so.n_ctx = 128;
  CHECK_OK(edgellm_session_create(m, &so, &s));
  edgellm_generate_result r;
  r.struct_size = sizeof r;
  CHECK_STATUS(edgellm_chat(s, with_system, 2, NULL, &r), EDGELLM_ERR_TEMPLATE);
  CHECK_ERROR_MENTIONS("this model takes no system turns");
  CHECK(edgellm_session_n_tokens(s) == 0);
  edgellm_session_free(s);
  edgellm_batch* b = NULL;
  edgellm_batch_options bo;
  edgellm_batch_options_init(&bo, sizeof bo);
  bo.n_seq = 1;
  bo.n_ctx = 128;
  CHECK_OK(edgellm_batch_create(m, &bo, &b));
  edgellm_batch_item item;
  memset(&item, 0, sizeof item);
  item.struct_size = sizeof item;
  item.messages = with_system;
  item.n_messages = 2;
  CHECK_STATUS(edgellm_batch_generate(b, &item, 1), EDGELLM_ERR_TEMPLATE);
  CHECK_ERROR_MENTIONS("items[0]");
  CHECK_ERROR_MENTIONS("this model takes no system turns");
  edgellm_batch_free(b);
  edgellm_model_free(m);
}

static const char* model_path(char* buf, size_t size) {
  const char* p = getenv("EDGELLM_TEST_MODEL");
  if (p && *p) return p;
  const char* dir = getenv("EDGELLM_MODEL_DIR");
  if (dir && *dir) snprintf(buf, size, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", dir);
  else snprintf(buf, size, "%s/.cache/edgellm/models/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME") ? getenv("HOME") : "");
  return buf;
}

int main(int argc, char** argv) {
  const char* part = argc > 1 ? argv[1] : "basic";
  if (!strcmp(part, "basic")) {
    test_versions_and_names();
    test_option_structs();
    test_bad_files();
    test_null_handles();
  } else if (!strcmp(part, "model")) {
    char buf[4096];
    const char* path = model_path(buf, sizeof buf);
    if (access(path, R_OK) != 0) {
      printf("SKIPPED: %s is not there (scripts/fetch-models smollm2-135m)\n", path);
      return 77;
    }
    edgellm_model_options mo;
    edgellm_model_options_init(&mo, sizeof mo);
    mo.n_threads = 2;
    if (edgellm_model_load(path, &mo, &g_model) != EDGELLM_OK) {
      fprintf(stderr, "cannot load %s: %s\n", path, edgellm_last_error());
      return 1;
    }
    test_info_and_meta();
    test_tokens();
    test_chat_render();
    test_sessions();
    test_generate();
    test_callback_stops();
    test_stop_string_and_sampling();
    test_json_schema();
    test_embed();
    test_model_embed();
    test_lora_errors(path);
    test_routed();
    test_routed_cloud();
    test_save_restore();
    test_two_threads();
    test_batch();
    test_template_error(path);
    edgellm_model_free(g_model);
  } else if (!strcmp(part, "lora") && argc == 4) {
    if (!load_model(argv[2])) return 1;
    test_lora(argv[2], argv[3]);
    edgellm_model_free(g_model);
  } else if (!strcmp(part, "embedder") && argc == 4) {
    if (!load_model(argv[2])) return 1;
    test_embedder(argv[3]);
    edgellm_model_free(g_model);
  } else {
    fprintf(stderr, "usage: capi_test basic|model|lora MODEL ADAPTER|embedder MODEL TEXT\n");
    return 2;
  }
  fprintf(stderr, "%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
