#define _POSIX_C_SOURCE 200809L
/* The hybrid router in-process (edgellm_router_*, edgellm_chat_routed): against the device, a
 * cloud that refuses connections, and a fake OpenAI-compatible cloud on loopback. */
#include <stdint.h>
#include <stdlib.h>

#include "capi_test.h"
#include "fake_cloud.h"

#if CAPI_TEST_HYBRID
/* Text handed to a routed chat's callback, joined. */
typedef struct {
  char text[4096];
  size_t len;
  int n_not_minus_one;
} deltas;

static bool collect_delta(int32_t token, const char* text, size_t len, void* user_data) {
  deltas* d = (deltas*)user_data;
  if (token != -1) d->n_not_minus_one++;
  if (d->len + len < sizeof d->text) {
    memcpy(d->text + d->len, text, len);
    d->len += len;
    d->text[d->len] = 0;
  }
  return true;
}

/* Routing in-process: a local-only policy answers on the device exactly as edgellm_chat does; a
 * cloud that refuses connections falls back to the device, and the route record says so. */
void test_routed(void) {
  edgellm_session* s = new_session(512, 0.0f);
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 16;
  edgellm_generate_result plain;
  plain.struct_size = sizeof plain;
  CHECK_OK(edgellm_chat(s, k_question, 1, &go, &plain));
  char want[1024];
  snprintf(want, sizeof want, "%s", plain.text);

  edgellm_router* local = NULL;
  CHECK_OK(edgellm_router_create("{\"mode\": \"local-only\"}", 512, &local));
  edgellm_routed_result r;
  r.struct_size = sizeof r;
  deltas d = {{0}, 0, 0};
  go.on_token = collect_delta;
  go.user_data = &d;
  CHECK_OK(edgellm_chat_routed(local, s, k_question, 1, &go, &r));
  CHECK(r.tier == EDGELLM_TIER_DEVICE);
  CHECK(!strcmp(r.text, want));
  CHECK(!strcmp(d.text, want) && d.n_not_minus_one == 0);
  CHECK(strstr(r.route_json, "\"reason\":\"local_only\"") != NULL);
  CHECK(!strcmp(r.tool_calls_json, ""));
  CHECK(r.completion_tokens > 0 && r.prompt_tokens > 0);

  /* Port 9 (discard) refuses connections: no retries, the device answers. */
  edgellm_router* down = NULL;
  CHECK_OK(edgellm_router_create("{\"mode\": \"cloud-only\", \"cloud\": {\"base_url\": \"http://127.0.0.1:9/v1\","
                                 " \"max_retries\": 0}}", 512, &down));
  go.on_token = NULL;
  CHECK_OK(edgellm_chat_routed(down, s, k_question, 1, &go, &r));
  CHECK(r.tier == EDGELLM_TIER_DEVICE);
  CHECK(!strcmp(r.text, want));
  CHECK(strstr(r.route_json, "\"fallback\":true") != NULL);
  CHECK(strstr(r.route_json, "\"reason\":\"cloud_down\"") != NULL);
  CHECK_STATUS(edgellm_chat_routed(down, s, k_question, 0, &go, &r), EDGELLM_ERR_INVALID_ARGUMENT);
  edgellm_router_free(down);
  edgellm_router_free(local);
  edgellm_session_free(s);
}

/* A cloud-only policy sends the conversation with the e-mail address redacted and gets the
 * cloud's answer, plain and streamed; when the cloud's stream breaks after text has reached the
 * app, no tier can complete the answer: EDGELLM_ERR_CLOUD, and the route record says why. */
void test_routed_cloud(void) {
  fake_cloud* cloud = fake_cloud_start();
  CHECK(cloud != NULL);
  if (!cloud) return;
  char policy[512];
  snprintf(policy, sizeof policy,
           "{\"mode\": \"cloud-only\", \"cloud\": {\"base_url\": \"%s\", \"model\": \"echo\", \"max_retries\": 0}}",
           fake_cloud_url(cloud));
  edgellm_router* router = NULL;
  CHECK_OK(edgellm_router_create(policy, 512, &router));
  edgellm_session* s = new_session(512, 0.0f);
  const edgellm_chat_message private_msg[] = {{"user", "Please write to jane.doe@example.com about the meeting."}};
  edgellm_generate_options go;
  edgellm_generate_options_init(&go, sizeof go);
  go.max_tokens = 16;
  edgellm_routed_result r;
  r.struct_size = sizeof r;

  CHECK_OK(edgellm_chat_routed(router, s, private_msg, 1, &go, &r));
  CHECK(r.tier == EDGELLM_TIER_CLOUD);
  CHECK(!strcmp(r.text, FAKE_CLOUD_TEXT));
  CHECK(r.finish_reason == EDGELLM_FINISH_STOP);
  CHECK(strstr(r.route_json, "\"redacted\":true") != NULL);
  CHECK(fake_cloud_requests(cloud) == 1);
  CHECK(strstr(fake_cloud_last_body(cloud), "meeting") != NULL);
  CHECK(strstr(fake_cloud_last_body(cloud), "jane.doe@example.com") == NULL);
  CHECK(strstr(fake_cloud_last_body(cloud), "\"max_tokens\":16") != NULL);

  deltas d = {{0}, 0, 0};
  go.on_token = collect_delta;
  go.user_data = &d;
  CHECK_OK(edgellm_chat_routed(router, s, private_msg, 1, &go, &r));
  CHECK(r.tier == EDGELLM_TIER_CLOUD);
  CHECK(!strcmp(d.text, FAKE_CLOUD_TEXT) && d.n_not_minus_one == 0);
  CHECK(!strcmp(r.text, FAKE_CLOUD_TEXT));

  fake_cloud_drop_streams(cloud, true);
  deltas cut = {{0}, 0, 0};
  go.user_data = &cut;
  CHECK_STATUS(edgellm_chat_routed(router, s, private_msg, 1, &go, &r), EDGELLM_ERR_CLOUD);
  CHECK(edgellm_last_error()[0] != '\0');
  CHECK(cut.len > 0 && cut.len < strlen(FAKE_CLOUD_TEXT)); /* the part that reached the app */
  /* The session and the router keep working. */
  fake_cloud_drop_streams(cloud, false);
  go.on_token = NULL;
  CHECK_OK(edgellm_chat_routed(router, s, private_msg, 1, &go, &r));
  CHECK(!strcmp(r.text, FAKE_CLOUD_TEXT));
  edgellm_session_free(s);
  edgellm_router_free(router);
  fake_cloud_stop(cloud);
}

void test_router_unsupported(void) {}

#else  /* engine-only library: no hybrid layer */

void test_routed(void) {}
void test_routed_cloud(void) {}

void test_router_unsupported(void) {
  edgellm_router* router = NULL;
  CHECK_STATUS(edgellm_router_create("{}", 0, &router), EDGELLM_ERR_UNSUPPORTED);
  CHECK_ERROR_MENTIONS("EDGELLM_ENGINE_ONLY");
  CHECK(router == NULL);
  CHECK_STATUS(edgellm_router_create(NULL, 0, &router), EDGELLM_ERR_INVALID_ARGUMENT);
}

#endif
