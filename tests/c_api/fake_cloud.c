#define _POSIX_C_SOURCE 200809L
#include "fake_cloud.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake_cloud {
  int listen_fd;
  pthread_t thread;
  pthread_mutex_t mu;
  bool drop_streams;
  bool stopping;
  int requests;
  char url[64];
  char body[16384];
};

static bool write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return false;
    s += w;
    n -= (size_t)w;
  }
  return true;
}

static bool write_str(int fd, const char* s) { return write_all(fd, s, strlen(s)); }

/* Reads the request's headers and its Content-Length body into c->body (truncated to fit).
 * Answers "Expect: 100-continue" so a client that waits for it sends the body at once. */
static bool read_request(fake_cloud* c, int fd, bool* streamed) {
  char buf[32768];
  size_t len = 0;
  char* end = NULL;
  while (!end) {
    if (len + 1 >= sizeof buf) return false;
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r <= 0) return false;
    len += (size_t)r;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  *end = '\0';
  size_t content_length = 0;
  for (char* line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (!strncasecmp(line + 2, "content-length:", 15)) content_length = (size_t)strtoul(line + 17, NULL, 10);
    if (!strncasecmp(line + 2, "expect: 100-continue", 20) && !write_str(fd, "HTTP/1.1 100 Continue\r\n\r\n"))
      return false;
  }
  const size_t head = (size_t)(end - buf) + 4;
  size_t have = len - head;
  if (content_length >= sizeof buf - head) return false;
  while (have < content_length) {
    ssize_t r = read(fd, buf + head + have, content_length - have);
    if (r <= 0) return false;
    have += (size_t)r;
  }
  buf[head + content_length] = '\0';
  pthread_mutex_lock(&c->mu);
  snprintf(c->body, sizeof c->body, "%s", buf + head);
  c->requests++;
  pthread_mutex_unlock(&c->mu);
  *streamed = strstr(buf + head, "\"stream\":true") != NULL || strstr(buf + head, "\"stream\": true") != NULL;
  return true;
}

static void answer(fake_cloud* c, int fd) {
  bool streamed = false;
  if (!read_request(c, fd, &streamed)) return;
  pthread_mutex_lock(&c->mu);
  const bool drop = c->drop_streams;
  pthread_mutex_unlock(&c->mu);
  char chunk[512];
  if (!streamed) {
    char json[512];
    snprintf(json, sizeof json,
             "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},"
             "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5}}",
             FAKE_CLOUD_TEXT);
    snprintf(chunk, sizeof chunk,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             strlen(json));
    if (write_str(fd, chunk)) write_str(fd, json);
    return;
  }
  if (!write_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")) return;
  static const char* const pieces[] = {"Hello ", "from the ", "cloud."};
  for (int i = 0; i < 3; ++i) {
    snprintf(chunk, sizeof chunk,
             "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
             pieces[i]);
    if (!write_str(fd, chunk)) return;
    if (drop) return; /* the connection closes with neither a finish_reason nor [DONE] */
  }
  write_str(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
}

static void* serve(void* arg) {
  fake_cloud* c = arg;
  for (;;) {
    int fd = accept(c->listen_fd, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    const bool stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (fd < 0 || stopping) {
      if (fd >= 0) close(fd);
      if (stopping) return NULL;
      continue;
    }
    answer(c, fd);
    close(fd);
  }
}

fake_cloud* fake_cloud_start(void) {
  fake_cloud* c = calloc(1, sizeof *c);
  if (!c) return NULL;
  pthread_mutex_init(&c->mu, NULL);
  c->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t addr_len = sizeof addr;
  if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(c->listen_fd, 4) != 0 || getsockname(c->listen_fd, (struct sockaddr*)&addr, &addr_len) != 0) {
    perror("fake_cloud");
    if (c->listen_fd >= 0) close(c->listen_fd);
    free(c);
    return NULL;
  }
  snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d/v1", ntohs(addr.sin_port));
  if (pthread_create(&c->thread, NULL, serve, c) != 0) {
    close(c->listen_fd);
    free(c);
    return NULL;
  }
  return c;
}

const char* fake_cloud_url(const fake_cloud* c) { return c->url; }

void fake_cloud_drop_streams(fake_cloud* c, bool drop) {
  pthread_mutex_lock(&c->mu);
  c->drop_streams = drop;
  pthread_mutex_unlock(&c->mu);
}

int fake_cloud_requests(fake_cloud* c) {
  pthread_mutex_lock(&c->mu);
  const int n = c->requests;
  pthread_mutex_unlock(&c->mu);
  return n;
}

const char* fake_cloud_last_body(fake_cloud* c) { return c->body; }

void fake_cloud_stop(fake_cloud* c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->stopping = true;
  pthread_mutex_unlock(&c->mu);
  /* Wake the blocked accept(): one connection of our own. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  socklen_t addr_len = sizeof addr;
  getsockname(c->listen_fd, (struct sockaddr*)&addr, &addr_len);
  if (fd >= 0) {
    connect(fd, (struct sockaddr*)&addr, sizeof addr);
    close(fd);
  }
  pthread_join(c->thread, NULL);
  close(c->listen_fd);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
