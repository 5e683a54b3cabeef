#pragma once
// Tells a request handler whether its client is still connected. cpp-httplib 0.11 gives a
// non-streamed handler no access to its socket and writes nothing until the handler returns,
// so a client that gives up would otherwise keep its slot generating to the end. The socket is
// found once by its addresses (the handler's connection stays open while the handler runs, so
// the descriptor cannot be reused meanwhile) and polled for the peer's close.
#include <string>

namespace edgellm::server {

class PeerWatch {
 public:
  PeerWatch(const std::string& remote_addr, int remote_port, const std::string& local_addr, int local_port);
  // False once the client has closed or reset the connection. True when the socket was not
  // found (nothing to watch: never cancel on a guess).
  bool alive() const;
  bool watching() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace edgellm::server
