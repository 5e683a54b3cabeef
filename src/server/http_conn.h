#pragma once
// The connection layer under cpp-httplib 0.11 (docs/server.md, "Connections"). httplib's own
// loop gives every connection one thread of a fixed pool, waits up to the read timeout for
// each line of a request head, reads a declared oversize body before refusing it, and builds
// a new read buffer per request, so pipelined requests after the first are lost. HttpServer
// replaces that loop (process_and_close_socket) and keeps httplib's parsing and routing:
// - one read buffer per connection: pipelined requests are answered in order;
// - phase timeouts: waiting for a request (idle), its line and headers (one deadline for the
//   whole head, so trickling bytes does not extend it), its body (between reads);
// - a response closes the connection ("Connection: close") whenever the request's body was
//   not read in full or its head did not parse, so unread bytes are never taken as a request;
// - a task queue that starts a thread per waiting connection up to a cap, so idle or slow
//   connections cost their own threads, not the ones serving others.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace edgellm::server {

struct HttpLimits {
  int idle_timeout_ms = 5000;    // for the first byte of a request (the first or a keep-alive one)
  int head_timeout_ms = 10000;   // for the request line and headers, from their first byte
  int body_timeout_ms = 15000;   // between two reads of a body
  int body_total_ms = 60000;     // for a whole body, from the end of its head
  int write_timeout_ms = 30000;  // for the client to take more bytes of an answer
  size_t max_threads = 1024;     // connections served at once; more wait for a thread
  size_t keep_alive_max = 1000;  // requests on one connection
};

// Runs each job on a waiting thread, starting a new one when none waits, up to max_threads;
// a thread idle for idle_exit ends unless it is one of the first keep_threads.
class GrowingTaskQueue final : public httplib::TaskQueue {
 public:
  GrowingTaskQueue(size_t max_threads, size_t keep_threads, std::chrono::milliseconds idle_exit);
  ~GrowingTaskQueue() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;  // runs the queued jobs, then joins every thread
  size_t threads() const;    // alive now

 private:
  void work();
  void spawn_locked();
  void reap_locked(std::vector<std::thread>& out);

  const size_t max_threads_, keep_threads_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread::id> finished_;  // exited for idleness, to be joined
  size_t idle_ = 0;
  size_t live_ = 0;
  bool stop_ = false;
};

// The post-routing handler is HttpServer's own (it decides "Connection: close"): do not replace it.
class HttpServer : public httplib::Server {
 public:
  HttpServer();
  // Before bind/listen.
  void set_limits(const HttpLimits& limits);
  const HttpLimits& limits() const { return limits_; }
  // After bind: httplib listens with a backlog of 5, so a burst of connections (or a moment
  // in which the accepting thread is not scheduled) makes the kernel drop SYNs, and the
  // clients retry only after a second. A listening socket takes a new backlog by listen().
  void widen_backlog(int backlog);

 private:
  bool process_and_close_socket(socket_t sock) override;
  HttpLimits limits_;
};

// From a handler (on the connection's thread): the answer ends the connection, e.g. because the
// request's body is left unread. No effect outside HttpServer's loop.
void close_connection_after_response();

}  // namespace edgellm::server
