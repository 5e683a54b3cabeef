/* What the files of the C API's test program (capi_test.c and its parts) share. */
#ifndef EDGELLM_TEST_CAPI_TEST_H
#define EDGELLM_TEST_CAPI_TEST_H

#include "check.h"

/* The model of `capi_test model` (SmolLM2-135M), loaded by main. */
extern edgellm_model* g_model;
/* "What is the capital of France?" as one user message. */
extern const edgellm_chat_message k_question[1];
/* A session on g_model with this context and temperature (0: greedy); NULL after a failed CHECK. */
edgellm_session* new_session(int32_t n_ctx, float temperature);

/* capi_routed.c: the hybrid router in-process, against the device and a fake cloud. */
void test_routed(void);
void test_routed_cloud(void);
/* Engine-only builds (no hybrid layer): every router call says EDGELLM_ERR_UNSUPPORTED. */
void test_router_unsupported(void);

#endif
