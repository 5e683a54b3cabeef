/* A terminal chat over the edgellm C API: each line of standard input is a user turn; the
 * answer streams to standard output, one line per turn after it is complete.
 *
 *   edgellm-chat MODEL.gguf [-s SYSTEM] [-n MAX_TOKENS] [-t THREADS] [--temp T] [--seed N]
 *
 * The whole conversation is passed every turn; the session reuses what its cache already holds,
 * so a turn costs only its new tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgellm/edgellm.h>

#define MAX_TURNS 64

static bool print_piece(int32_t token, const char* text, size_t len, void* user_data) {
  (void)token;
  (void)user_data;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return true; /* false would stop the answer here */
}

static char* copy(const char* s, size_t n) {
  char* c = malloc(n + 1);
  if (c) {
    memcpy(c, s, n);
    c[n] = '\0';
  }
  return c;
}

static int usage(void) {
  fprintf(stderr, "usage: edgellm-chat MODEL.gguf [-s SYSTEM] [-n MAX_TOKENS] [-t THREADS] [--temp T] [--seed N]\n");
  return 2;
}

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const char* system = NULL;
  int max_tokens = 256, threads = 0;
  float temp = 0.8f;
  unsigned long long seed = 0;
  int have_seed = 0;
  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc) return usage();
    if (!strcmp(argv[i], "-s")) system = argv[++i];
    else if (!strcmp(argv[i], "-n")) max_tokens = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-t")) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--temp")) temp = (float)atof(argv[++i]);
    else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[++i], NULL, 10), have_seed = 1;
    else return usage();
  }

  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  mo.n_threads = threads;
  edgellm_model* model = NULL;
  if (edgellm_model_load(argv[1], &mo, &model) != EDGELLM_OK) {
    fprintf(stderr, "error: %s\n", edgellm_last_error());
    return 1;
  }
  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.temperature = temp;
  if (have_seed) sp.seed = seed;
  edgellm_session_options so;
  edgellm_session_options_init(&so, sizeof so);
  so.sampling = &sp;
  edgellm_session* session = NULL;
  if (edgellm_session_create(model, &so, &session) != EDGELLM_OK) {
    fprintf(stderr, "error: %s\n", edgellm_last_error());
    edgellm_model_free(model);
    return 1;
  }
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = max_tokens;
  go.on_token = print_piece;

  edgellm_chat_message msgs[2 * MAX_TURNS + 1];
  size_t n = 0;
  if (system) msgs[n++] = (edgellm_chat_message){"system", system};
  char line[8192];
  int rc = 0;
  while (n + 2 <= sizeof msgs / sizeof msgs[0] && fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = '\0';
    if (!line[0]) continue;
    msgs[n++] = (edgellm_chat_message){"user", copy(line, strlen(line))};
    edgellm_generate_result res;
    res.struct_size = sizeof res;
    if (edgellm_chat(session, msgs, n, &go, &res) != EDGELLM_OK) {
      fprintf(stderr, "error: %s\n", edgellm_last_error());
      rc = 1;
      break;
    }
    printf("\n");
    fprintf(stderr, "[%d prompt tokens (%d run), %d generated, %.1f tok/s]\n", res.n_prompt,
            res.n_prompt_evaluated, res.n_tokens, res.n_tokens / (res.decode_seconds > 0 ? res.decode_seconds : 1e-9));
    msgs[n++] = (edgellm_chat_message){"assistant", copy(res.text, res.text_len)};
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(msgs[i].role, "system") != 0) free((char*)msgs[i].content);
  edgellm_session_free(session);
  edgellm_model_free(model);
  return rc;
}
