/* A tiny assertion harness for the C API tests: failures are counted and printed with the
 * line and edgellm_last_error(), and the test goes on. */
#ifndef EDGELLM_TEST_CHECK_H
#define EDGELLM_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include <edgellm/edgellm.h>

/* Shared by every file of a test program; capi_test.c defines them. */
extern int g_failures;
extern int g_checks;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    ++g_checks;                                                                       \
    if (!(cond)) {                                                                    \
      ++g_failures;                                                                   \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond, \
              edgellm_last_error());                                                  \
    }                                                                                 \
  } while (0)

/* The call must return `expected`. */
#define CHECK_STATUS(call, expected)                                                  \
  do {                                                                                \
    ++g_checks;                                                                       \
    edgellm_status got_ = (call);                                                     \
    if (got_ != (expected)) {                                                         \
      ++g_failures;                                                                   \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", __FILE__, __LINE__, \
              #call, edgellm_status_name(got_), edgellm_status_name(expected), edgellm_last_error()); \
    }                                                                                 \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, EDGELLM_OK)

/* The last error names `part` (messages must say what is at fault). */
#define CHECK_ERROR_MENTIONS(part) CHECK(strstr(edgellm_last_error(), (part)) != NULL)

#endif
