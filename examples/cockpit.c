/* A cockpit assistant over the edgellm C API: each line of standard input is a driver's request;
 * the model answers with exactly one tool call, forced by a JSON schema (climate, media or
 * navigation), which is printed as one JSON line on standard output and "dispatched" on
 * standard error. The schema constraint makes every answer a well-formed call with arguments in
 * range, whatever the model; choosing the right tool is the model's part.
 *
 *   edgellm-cockpit MODEL.gguf [-t THREADS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <edgellm/edgellm.h>

static const char* const k_system =
    "You control a car's cabin. Answer every request with one JSON tool call and nothing else.\n"
    "Tools:\n"
    "- set_climate: temperature_c (16-28), zone (driver, passenger or all)\n"
    "- play_media: query (what to play), source (radio, spotify or usb)\n"
    "- navigate: destination (a place), avoid_tolls (true or false)\n"
    "Example: {\"tool\": \"set_climate\", \"temperature_c\": 21, \"zone\": \"all\"}";

/* One object per tool; "tool" names it, the other keys are its arguments. */
static const char* const k_schema =
    "{\"anyOf\": ["
    "{\"type\": \"object\", \"properties\": {"
    "\"tool\": {\"const\": \"set_climate\"},"
    "\"temperature_c\": {\"type\": \"integer\", \"minimum\": 16, \"maximum\": 28},"
    "\"zone\": {\"enum\": [\"driver\", \"passenger\", \"all\"]}},"
    "\"required\": [\"tool\", \"temperature_c\", \"zone\"], \"additionalProperties\": false},"
    "{\"type\": \"object\", \"properties\": {"
    "\"tool\": {\"const\": \"play_media\"},"
    "\"query\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 60},"
    "\"source\": {\"enum\": [\"radio\", \"spotify\", \"usb\"]}},"
    "\"required\": [\"tool\", \"query\", \"source\"], \"additionalProperties\": false},"
    "{\"type\": \"object\", \"properties\": {"
    "\"tool\": {\"const\": \"navigate\"},"
    "\"destination\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 80},"
    "\"avoid_tolls\": {\"type\": \"boolean\"}},"
    "\"required\": [\"tool\", \"destination\", \"avoid_tolls\"], \"additionalProperties\": false}"
    "]}";

/* JSON without the whitespace between tokens (the schema lets the model indent): one line. */
static void compact_json(const char* in, size_t len, char* out) {
  int in_string = 0, escaped = 0;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    if (in_string) {
      if (escaped) escaped = 0;
      else if (c == '\\') escaped = 1;
      else if (c == '"') in_string = 0;
    } else if (c == '"') {
      in_string = 1;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      continue;
    }
    *out++ = c;
  }
  *out = '\0';
}

/* The car's side: here it only says what it would do. */
static void dispatch(const char* call) {
  if (strstr(call, "\"set_climate\"")) fprintf(stderr, "[climate] %s\n", call);
  else if (strstr(call, "\"play_media\"")) fprintf(stderr, "[media] %s\n", call);
  else if (strstr(call, "\"navigate\"")) fprintf(stderr, "[navigation] %s\n", call);
  else fprintf(stderr, "[unknown] %s\n", call);
}

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "-t"))) {
    fprintf(stderr, "usage: edgellm-cockpit MODEL.gguf [-t THREADS]\n");
    return 2;
  }
  edgellm_model_options mo;
  edgellm_model_options_init(&mo, sizeof mo);
  if (argc == 4) mo.n_threads = atoi(argv[3]);
  edgellm_model* model = NULL;
  edgellm_session* session = NULL;
  if (edgellm_model_load(argv[1], &mo, &model) != EDGELLM_OK ||
      edgellm_session_create(model, NULL, &session) != EDGELLM_OK) {
    fprintf(stderr, "error: %s\n", edgellm_last_error());
    edgellm_model_free(model);
    return 1;
  }
  edgellm_sampling_params sp;
  edgellm_sampling_params_init(&sp, sizeof sp);
  sp.temperature = 0; /* the same request gives the same call */
  edgellm_session_set_sampling(session, &sp);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 96;
  go.json_schema = k_schema;

  char line[2048];
  int rc = 0;
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = '\0';
    if (!line[0]) continue;
    /* Each request stands alone; the system prompt's cache is reused from the last one. */
    edgellm_chat_message msgs[2] = {{"system", k_system}, {"user", line}};
    edgellm_generate_result res;
    res.struct_size = sizeof res;
    if (edgellm_chat(session, msgs, 2, &go, &res) != EDGELLM_OK) {
      fprintf(stderr, "error: %s\n", edgellm_last_error());
      rc = 1;
      break;
    }
    if (res.finish_reason != EDGELLM_FINISH_STOP) {
      fprintf(stderr, "error: the call did not finish within %d tokens\n", go.max_tokens);
      rc = 1;
      continue;
    }
    char* call = malloc(res.text_len + 1);
    if (!call) {
      rc = 1;
      break;
    }
    compact_json(res.text, res.text_len, call);
    printf("%s\n", call);
    fflush(stdout);
    dispatch(call);
    free(call);
  }
  edgellm_session_free(session);
  edgellm_model_free(model);
  return rc;
}
