// /v1/files and /v1/fine_tuning/jobs in the shape of OpenAI's API (finetune_jobs.h does the work).
#include <filesystem>

#include <unistd.h>

#include "server/api_error.h"
#include "server/finetune_jobs.h"
#include "server/server_impl.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

int64_t limit_param(const httplib::Request& req) {
  if (!req.has_param("limit")) return 20;
  const std::string v = req.get_param_value("limit");
  int64_t n = 0;
  if (v.empty() || v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos || (n = std::stoll(v)) < 1 ||
      n > 10000)
    throw ApiError(400, "\"limit\" must be an integer between 1 and 10000", "limit", "invalid_value");
  return n;
}

ojson json_body(const httplib::Request& req) {
  try {
    return ojson::parse(req.body);
  } catch (const std::exception&) {
    throw ApiError(400, "the request body is not valid JSON", "", "invalid_request_error");
  }
}

}  // namespace

std::string default_finetune_dir() {
  return (std::filesystem::temp_directory_path() / ("edgellm-finetune-" + std::to_string(getpid()))).string();
}

void register_finetune_routes(ServerState& st) {
  auto& http = st.http;
  FineTuning* ft = st.finetune.get();
  // A file as the openai client uploads it (multipart: "file" and "purpose"), or, for clients that
  // cannot send multipart, JSON {"filename", "purpose", "content"}.
  http.Post("/v1/files", guarded([ft](const httplib::Request& req, httplib::Response& res) {
              if (req.is_multipart_form_data()) {
                if (!req.has_file("file")) throw ApiError(400, "the form has no \"file\" part", "file", "missing_required_parameter");
                if (!req.has_file("purpose"))
                  throw ApiError(400, "the form has no \"purpose\" part", "purpose", "missing_required_parameter");
                const auto f = req.get_file_value("file");
                return send_json(res, ft->add_file(f.filename.empty() ? "upload.jsonl" : f.filename,
                                                   req.get_file_value("purpose").content, f.content));
              }
              const ojson b = json_body(req);
              if (!b.is_object() || !b.contains("content") || !b["content"].is_string())
                throw ApiError(400, "send the file as multipart/form-data (file, purpose) or as JSON with \"content\"",
                               "file", "missing_required_parameter");
              const std::string purpose = b.value("purpose", std::string("fine-tune"));
              send_json(res, ft->add_file(b.value("filename", std::string("upload.jsonl")), purpose,
                                          b["content"].get<std::string>()));
            }));
  http.Get("/v1/files", guarded([ft](const httplib::Request&, httplib::Response& res) {
             send_json(res, ft->list_files());
           }));
  http.Get(R"(/v1/files/([^/]+))", guarded([ft](const httplib::Request& req, httplib::Response& res) {
             send_json(res, ft->file_json(req.matches[1]));
           }));
  http.Post("/v1/fine_tuning/jobs", guarded([ft](const httplib::Request& req, httplib::Response& res) {
              send_json(res, ft->create(json_body(req)));
            }));
  http.Get("/v1/fine_tuning/jobs", guarded([ft](const httplib::Request& req, httplib::Response& res) {
             send_json(res, ft->list_jobs(limit_param(req), req.get_param_value("after")));
           }));
  http.Get(R"(/v1/fine_tuning/jobs/([^/]+))", guarded([ft](const httplib::Request& req, httplib::Response& res) {
             send_json(res, ft->job_json(req.matches[1]));
           }));
  http.Get(R"(/v1/fine_tuning/jobs/([^/]+)/events)",
           guarded([ft](const httplib::Request& req, httplib::Response& res) {
             send_json(res, ft->events_json(req.matches[1], limit_param(req), req.get_param_value("after")));
           }));
  http.Post(R"(/v1/fine_tuning/jobs/([^/]+)/cancel)",
            guarded([ft](const httplib::Request& req, httplib::Response& res) {
              send_json(res, ft->cancel(req.matches[1]));
            }));
}

}  // namespace edgellm::server
