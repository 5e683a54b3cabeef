// The HTTP connection layer (src/server/http_conn.h, http_framing.h) without a model: framing
// checks, the growing task queue, and HttpServer over loopback sockets (pipelined requests
// answered in order, unread bodies ending the connection, the head deadline). Nothing here
// depends on the machine's speed: waits are for events, with deadlines far beyond need.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "server/http_conn.h"
#include "server/http_framing.h"

namespace edgellm::server {
namespace {

httplib::Headers headers(std::initializer_list<std::pair<std::string, std::string>> kv) {
  httplib::Headers h;
  for (const auto& [k, v] : kv) h.emplace(k, v);
  return h;
}

TEST(HttpFraming, AcceptsOrdinaryRequests) {
  EXPECT_FALSE(check_framing("GET", {}, 1024));
  EXPECT_FALSE(check_framing("POST", headers({{"Content-Length", "10"}}), 1024));
  EXPECT_FALSE(check_framing("POST", headers({{"content-length", "1024"}}), 1024));
}

TEST(HttpFraming, RefusesSmuggling) {
  auto v = check_framing("POST", headers({{"Content-Length", "5"}, {"Content-Length", "5"}}), 1024);
  EXPECT_EQ(v.status, 400);
  v = check_framing("POST", headers({{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}}), 1024);
  EXPECT_EQ(v.status, 400);
  EXPECT_EQ(v.code, "invalid_framing");
  for (const char* bad : {"", "+5", "-1", " 5", "0x10", "5,5", "99999999999999999999"})
    EXPECT_EQ(check_framing("POST", headers({{"Content-Length", bad}}), 1024).status, 400) << bad;
}

TEST(HttpFraming, RefusesUnreadableBodies) {
  EXPECT_EQ(check_framing("POST", headers({{"Transfer-Encoding", "chunked"}}), 1024).status, 411);
  EXPECT_EQ(check_framing("POST", {}, 1024).status, 411);
  const auto v = check_framing("POST", headers({{"Content-Length", "1025"}}), 1024);
  EXPECT_EQ(v.status, 413);
  EXPECT_EQ(v.code, "request_too_large");
}

// Waits (up to a deadline far beyond any machine's need) until pred() holds.
template <typename P>
bool wait_for(std::mutex& mu, std::condition_variable& cv, P pred) {
  std::unique_lock<std::mutex> lk(mu);
  return cv.wait_for(lk, std::chrono::seconds(60), pred);
}

TEST(GrowingTaskQueue, StartsAThreadPerWaitingJob) {
  GrowingTaskQueue q(1024, 2, std::chrono::seconds(30));
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool open = false;
  constexpr int kJobs = 50;
  for (int i = 0; i < kJobs; ++i) {
    q.enqueue([&] {
      std::unique_lock<std::mutex> lk(mu);
      ++started;
      cv.notify_all();
      cv.wait(lk, [&] { return open; });  // every job blocks until all have started
    });
  }
  EXPECT_TRUE(wait_for(mu, cv, [&] { return started == kJobs; })) << started << " of " << kJobs << " started";
  EXPECT_GE(q.threads(), static_cast<size_t>(kJobs));
  {
    std::lock_guard<std::mutex> lk(mu);
    open = true;
  }
  cv.notify_all();
  q.shutdown();
}

TEST(GrowingTaskQueue, StopsAtItsCapAndRunsEveryJob) {
  GrowingTaskQueue q(4, 1, std::chrono::seconds(30));
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, most = 0, done = 0;
  bool open = false;
  for (int i = 0; i < 12; ++i) {
    q.enqueue([&] {
      std::unique_lock<std::mutex> lk(mu);
      most = std::max(most, ++running);
      cv.notify_all();
      cv.wait(lk, [&] { return open; });
      --running;
      ++done;
      cv.notify_all();
    });
  }
  EXPECT_TRUE(wait_for(mu, cv, [&] { return running == 4; }));
  {
    std::lock_guard<std::mutex> lk(mu);
    open = true;
  }
  cv.notify_all();
  EXPECT_TRUE(wait_for(mu, cv, [&] { return done == 12; }));
  q.shutdown();
  EXPECT_EQ(most, 4);
  EXPECT_LE(q.threads(), 4u);
}

// A real HttpServer on a loopback port with one route that echoes its path.
class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits lim) {
    srv_.set_limits(lim);
    srv_.Get("/echo/(.*)", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.matches[1].str(), "text/plain");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    srv_.widen_backlog(1024);
    th_ = std::thread([this] { srv_.listen_after_bind(); });
  }
  void TearDown() override {
    srv_.stop();
    if (th_.joinable()) th_.join();
  }

  int connect_() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  static void send_all(int fd, const std::string& s) {
    ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Everything the server sends until it closes the connection (or a 60 s safety deadline).
  static std::string read_to_close(int fd) {
    std::string out;
    char buf[4096];
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      const ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  static size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  }

  HttpServer srv_;
  std::thread th_;
  int port_ = 0;
};

TEST_F(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  start({});
  const int fd = connect_();
  send_all(fd,
           "GET /echo/one HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /echo/two HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /echo/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string out = read_to_close(fd);
  close(fd);
  EXPECT_EQ(count(out, "HTTP/1.1 200 OK"), 3u) << out;
  const size_t one = out.find("\r\n\r\none"), two = out.find("\r\n\r\ntwo"), three = out.find("\r\n\r\nthree");
  ASSERT_NE(one, std::string::npos) << out;
  ASSERT_NE(two, std::string::npos) << out;
  ASSERT_NE(three, std::string::npos) << out;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
}

TEST_F(HttpServerTest, AnUnreadBodyIsNeverTakenForARequest) {
  start({});
  const int fd = connect_();
  // A GET's body is not read by httplib; here it holds what would be a smuggled request.
  const std::string smuggled = "GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  send_all(fd, "GET /echo/first HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(smuggled.size()) +
                   "\r\n\r\n" + smuggled);
  const std::string out = read_to_close(fd);
  close(fd);
  EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_EQ(out.find("smuggled"), std::string::npos) << out;
}

TEST_F(HttpServerTest, AMalformedHeadClosesTheConnection) {
  start({});
  const int fd = connect_();
  send_all(fd, "NONSENSE\r\n\r\nGET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string out = read_to_close(fd);
  close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_EQ(count(out, "HTTP/1.1 "), 1u) << out;
}

TEST_F(HttpServerTest, TricklingAHeadDoesNotExtendItsDeadline) {
  HttpLimits lim;
  lim.head_timeout_ms = 500;
  start(lim);
  const int fd = connect_();
  // One byte of a never-ending header every 50 ms for up to 60 s: the server must hang up
  // long before (after 0.5 s); a per-read timeout would keep it open forever.
  send_all(fd, "GET /echo/x HTTP/1.1\r\nX-Slow: ");
  bool closed = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!closed && std::chrono::steady_clock::now() < until) {
    if (send(fd, "a", 1, MSG_NOSIGNAL) < 0) {
      closed = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char c;
      if (recv(fd, &c, 1, MSG_DONTWAIT) <= 0) closed = true;
    }
  }
  close(fd);
  EXPECT_TRUE(closed);
}

TEST_F(HttpServerTest, IdleConnectionsDoNotHoldTheOthersThreads) {
  // Timeouts longer than the test's 60 s wait: only a thread per connection answers in time.
  HttpLimits lim;
  lim.idle_timeout_ms = lim.head_timeout_ms = 120000;
  start(lim);
  // 200 idle and 200 half-sent connections, then an ordinary request.
  std::vector<int> held;
  for (int i = 0; i < 400; ++i) {
    held.push_back(connect_());
    if (i % 2) send_all(held.back(), "GET /ec");
  }
  const int fd = connect_();
  send_all(fd, "GET /echo/alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string out = read_to_close(fd);
  close(fd);
  for (const int h : held) close(h);
  EXPECT_NE(out.find("alive"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgellm::server
