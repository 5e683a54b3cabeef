/* A minimal OpenAI-compatible chat endpoint on 127.0.0.1 for the C API's routing tests: it
 * answers every POST with one fixed text, plain or streamed (SSE), and can cut the next streams
 * after their first piece, as a cloud that drops the connection mid-answer. One connection at a
 * time, on its own thread. */
#ifndef EDGELLM_TEST_FAKE_CLOUD_H
#define EDGELLM_TEST_FAKE_CLOUD_H

#include <stdbool.h>

#define FAKE_CLOUD_TEXT "Hello from the cloud."

typedef struct fake_cloud fake_cloud;

/* NULL when no socket can be opened (the reason is printed). */
fake_cloud* fake_cloud_start(void);
/* "http://127.0.0.1:PORT/v1" */
const char* fake_cloud_url(const fake_cloud* c);
void fake_cloud_drop_streams(fake_cloud* c, bool drop);
/* The requests answered so far, and the body of the last one ("" before any). */
int fake_cloud_requests(fake_cloud* c);
const char* fake_cloud_last_body(fake_cloud* c);
void fake_cloud_stop(fake_cloud* c);

#endif
