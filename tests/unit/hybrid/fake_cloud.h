#pragma once
// In-process OpenAI-compatible test endpoint (cpp-httplib on a random loopback port) that can be
// told to answer normally, stream, fail with 500/400, send malformed JSON, sleep past the
// client's timeout or drop the connection mid-answer. It records every request body so tests
// can check what left the device.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace edgellm::hybrid::testing {

enum class FakeMode { Normal, Status500, Status400, Malformed, Sleep, Drop, ErrorEvent };

class FakeCloud {
 public:
  FakeCloud();
  ~FakeCloud();
  std::string base_url() const;  // http://127.0.0.1:PORT/v1
  int port() const { return port_; }

  void set_mode(FakeMode m) { mode_ = m; }
  // The first n requests get 500 whatever the mode, later ones follow the mode.
  void set_fail_first(int n) { fail_first_ = n; }
  // Sleep mode holds each answer this long, or until the FakeCloud is destroyed: tests give a
  // hold far beyond the client's timeout, so the outcome never depends on the machine's speed.
  void set_sleep_ms(int ms) { sleep_ms_ = ms; }
  // Fixed reply text; empty (default): "echo: " + the last user message's content.
  void set_reply(const std::string& text);

  int requests() const { return requests_; }
  std::vector<nlohmann::json> bodies() const;
  std::vector<std::string> auth_headers() const;

 private:
  std::string reply_for(const nlohmann::json& body) const;

  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<FakeMode> mode_{FakeMode::Normal};
  std::atomic<int> fail_first_{0};
  std::atomic<int> sleep_ms_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::condition_variable released_cv_;
  bool released_ = false;  // the destructor ends every held answer
  std::string reply_;
  std::vector<nlohmann::json> bodies_;
  std::vector<std::string> auth_;
};

}  // namespace edgellm::hybrid::testing
