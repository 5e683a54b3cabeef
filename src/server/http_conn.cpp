// HttpServer's connection loop and its socket stream (see http_conn.h).
#include "server/http_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace edgellm::server {
namespace {

using Clock = std::chrono::steady_clock;

// A connection's socket with one read buffer for all its requests and a deadline per phase.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(socket_t fd, const HttpLimits& lim, const std::atomic<socket_t>& listener)
      : fd_(fd), lim_(lim), listener_(listener), buf_(16384) {}

  // Waits for the first byte of the next request (buffered or arriving within the idle
  // timeout); false when none comes or the server is stopping.
  bool wait_request() {
    if (pos_ < end_) return true;
    return wait(POLLIN, Clock::now() + std::chrono::milliseconds(lim_.idle_timeout_ms), true);
  }
  void begin_head() {
    body_ = false;
    head_deadline_ = Clock::now() + std::chrono::milliseconds(lim_.head_timeout_ms);
  }
  void begin_body() {
    body_ = true;
    body_read_ = 0;
    body_deadline_ = Clock::now() + std::chrono::milliseconds(lim_.body_total_ms);
  }
  uint64_t body_read() const { return body_read_; }

  bool is_readable() const override {
    return pos_ < end_ || wait(POLLIN, read_deadline(), false);
  }
  bool is_writable() const override {
    return wait(POLLOUT, Clock::now() + std::chrono::milliseconds(lim_.write_timeout_ms), false) && peer_open();
  }

  ssize_t read(char* ptr, size_t size) override {
    while (pos_ == end_) {
      if (!wait(POLLIN, read_deadline(), false)) return -1;
      const ssize_t r = recv(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (r <= 0) return r;
      pos_ = 0;
      end_ = static_cast<size_t>(r);
    }
    const size_t n = std::min(size, end_ - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    if (body_) body_read_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      if (!wait(POLLOUT, Clock::now() + std::chrono::milliseconds(lim_.write_timeout_ms), false)) return -1;
      const ssize_t r = send(fd_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      return r;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { name(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { name(false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  Clock::time_point read_deadline() const {
    return body_ ? std::min(Clock::now() + std::chrono::milliseconds(lim_.body_timeout_ms), body_deadline_)
                 : head_deadline_;
  }

  // Polls until an event or the deadline, in short slices so that a stopping server (its
  // listening socket closed) ends an idle wait at once.
  bool wait(short events, Clock::time_point deadline, bool stop_on_shutdown) const {
    for (;;) {
      if (stop_on_shutdown && listener_ == INVALID_SOCKET) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, stop_on_shutdown ? 100 : 1000)));
      if (r > 0) return true;  // also on hang-up or error: the read or write then reports it
      if (r < 0 && errno != EINTR) return false;
    }
  }

  // False once the client has closed its side (a pipelined request is data, so it stays open).
  bool peer_open() const {
    if (pos_ < end_) return true;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return true;
    char c;
    const ssize_t r = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }

  void name(bool peer, std::string& ip, int& port) const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if ((peer ? getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len)
              : getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len)) != 0)
      return;
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      if (!inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf)) return;
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      if (!inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf)) return;
      port = ntohs(a->sin6_port);
    } else {
      return;
    }
    ip = buf;
  }

  socket_t fd_;
  const HttpLimits& lim_;
  const std::atomic<socket_t>& listener_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool body_ = false;
  Clock::time_point head_deadline_{}, body_deadline_{};
  uint64_t body_read_ = 0;
};

// What the loop knows about the request being served on this thread.
struct ConnContext {
  const ConnStream* stream = nullptr;
  bool head_parsed = false;
  uint64_t declared_body = 0;  // Content-Length when it is one valid number
  bool must_close = false;
};

thread_local ConnContext* tl_conn = nullptr;

uint64_t declared_length(const httplib::Request& req) {
  if (req.get_header_value_count("Content-Length") != 1) return 0;
  const std::string v = req.get_header_value("Content-Length");
  if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(v);
}

// After a refused or unread body the client may still be sending: stop writing, then read and
// drop for a moment so that closing does not reset the connection before the client has read
// the answer.
void linger_close(socket_t fd) {
  ::shutdown(fd, SHUT_WR);
  const auto until = Clock::now() + std::chrono::milliseconds(1000);
  char sink[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    if (recv(fd, sink, sizeof sink, MSG_DONTWAIT) <= 0) break;
  }
}

}  // namespace

void close_connection_after_response() {
  if (tl_conn) tl_conn->must_close = true;
}

HttpServer::HttpServer() {
  new_task_queue = [this] {
    return new GrowingTaskQueue(limits_.max_threads, 8, std::chrono::seconds(30));
  };
  // Runs just before the status line is written, for every answer httplib sends.
  set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    ConnContext* c = tl_conn;
    if (!c) return;
    if (!c->head_parsed || c->stream->body_read() < c->declared_body) c->must_close = true;
    if (c->must_close) {
      res.headers.erase("Keep-Alive");
      res.headers.erase("Connection");
      res.headers.emplace("Connection", "close");
    }
  });
}

void HttpServer::set_limits(const HttpLimits& limits) {
  limits_ = limits;
  set_keep_alive_max_count(limits.keep_alive_max);
  set_keep_alive_timeout(std::max(1, limits.idle_timeout_ms / 1000));  // only the Keep-Alive header shows it
  set_read_timeout(limits.body_timeout_ms / 1000, (limits.body_timeout_ms % 1000) * 1000);
  set_write_timeout(limits.write_timeout_ms / 1000, (limits.write_timeout_ms % 1000) * 1000);
}

void HttpServer::widen_backlog(int backlog) {
  const socket_t s = svr_sock_;
  if (s != INVALID_SOCKET) ::listen(s, backlog);
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  ConnStream strm(sock, limits_, svr_sock_);
  ConnContext ctx;
  ctx.stream = &strm;
  tl_conn = &ctx;
  bool ok = true;
  for (size_t n = 0; n < limits_.keep_alive_max; ++n) {
    if (svr_sock_ == INVALID_SOCKET || !strm.wait_request()) break;
    ctx.head_parsed = false;
    ctx.declared_body = 0;
    strm.begin_head();
    bool closed = false;
    ok = process_request(strm, n + 1 == limits_.keep_alive_max, closed, [&](httplib::Request& req) {
      ctx.head_parsed = true;
      ctx.declared_body = declared_length(req);
      strm.begin_body();
    });
    if (!ok || closed || ctx.must_close) break;
  }
  tl_conn = nullptr;
  if (ctx.must_close) linger_close(sock);
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace edgellm::server
