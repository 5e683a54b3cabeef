// GET / and the page's assets: embedded copies of web/ when the build generated them
// (cmake/embed_web.cmake), else files read from the web directory.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "server/server_impl.h"

#ifdef EDGELLM_WEB_EMBEDDED
#include "edgellm_web_assets.h"
#endif

namespace edgellm::server {
namespace {

std::string content_type(const std::string& name) {
  auto ends = [&](const char* ext) {
    const std::string e = ext;
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

bool safe_name(const std::string& n) {
  if (n.empty() || n.size() > 100 || n[0] == '.') return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

// Directory to read the page from when it is not embedded (or when --web-dir asks).
std::string web_dir(const ServerState& st) {
  if (!st.opts.web_dir.empty()) return st.opts.web_dir;
  if (const char* e = std::getenv("EDGELLM_WEB_DIR")) return e;
  // This file lives in <source>/src/server/.
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "web").string();
}

bool find_asset(const ServerState& st, const std::string& name, std::string& out) {
#ifdef EDGELLM_WEB_EMBEDDED
  if (st.opts.web_dir.empty()) {
    for (const auto* a = web::kAssets; a->name; ++a)
      if (name == a->name) {
        out.assign(reinterpret_cast<const char*>(a->data), a->size);
        return true;
      }
    return false;
  }
#endif
  std::ifstream in(std::filesystem::path(web_dir(st)) / name, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

void serve(const ServerState& st, const std::string& name, httplib::Response& res) {
  std::string data;
  if (!safe_name(name) || !find_asset(st, name, data)) {
    send_error(res, 404, "Not found: /" + name, "", "not_found");
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_content(data, content_type(name).c_str());
}

}  // namespace

void register_web_routes(ServerState& st) {
  st.http.Get("/", [&st](const httplib::Request&, httplib::Response& res) { serve(st, "index.html", res); });
  st.http.Get(R"(/([A-Za-z0-9_.-]+))",
              [&st](const httplib::Request& req, httplib::Response& res) { serve(st, req.matches[1], res); });
}

}  // namespace edgellm::server
