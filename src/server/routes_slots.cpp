// POST /slots/{id}?action=save|restore with {"filename": "..."} (and "model" or ?model= when the
// server serves several): a slot's KV state saved to or restored from --slot-save-path, as
// llama-server does. A file name only (no folders), so a
// client can reach nothing outside that folder.
#include <filesystem>

#include "runtime/session_file.h"
#include "server/api_error.h"
#include "server/server_impl.h"
#include "server/request.h"

namespace edgellm::server {
namespace {

std::string checked_filename(const ojson& body) {
  if (!body.is_object() || !body.contains("filename") || !body["filename"].is_string())
    throw ApiError(400, "give the file name as {\"filename\": \"name.bin\"}", "filename");
  const std::string name = body["filename"].get<std::string>();
  const bool bad = name.empty() || name.size() > 255 || name == "." || name == ".." ||
                   name.find_first_of(std::string("/\\\0", 3)) != std::string::npos;
  if (bad) throw ApiError(400, "filename must be a plain file name (no folders, at most 255 bytes)", "filename");
  return name;
}

void slot_action(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  if (st.opts.slot_save_path.empty())
    throw ApiError(501, "saving slots is off; start the server with --slot-save-path DIR", "", "not_supported");
  int32_t id = -1;
  try {
    id = std::stoi(req.matches[1].str());
  } catch (const std::exception&) {
    throw ApiError(400, "slot id must be a small integer", "id_slot");
  }
  const std::string action = req.get_param_value("action");
  if (action != "save" && action != "restore")
    throw ApiError(400, "action must be save or restore", "action");
  const ojson body = parse_body(req.body);
  const std::string name = checked_filename(body);
  const std::string path = (std::filesystem::path(st.opts.slot_save_path) / name).string();
  if (action == "restore" && !std::filesystem::exists(path))
    throw ApiError(404, "no saved slot named '" + name + "'", "filename", "not_found");
  // The slots of the model named by "model" in the body or ?model= (default: the first served).
  ojson which = body;
  if (req.has_param("model")) which["model"] = req.get_param_value("model");
  const auto lease = acquire_model(st, which, req);
  auto& sched = *lease->model().sched;
  runtime::Scheduler::SlotFile r;
  try {
    model::LoraSet lora;
    {
      std::shared_lock<std::shared_mutex> lk(lease->model().lora_mu);
      for (const auto& e : lease->model().lora.entries)
        if (e.scale != 0.0f) lora.entries.push_back(e);  // the set a request without "lora" runs with
    }
    r = action == "save" ? sched.save_slot(id, path) : sched.restore_slot(id, path, lora);
  } catch (const runtime::SlotBusy& e) {
    throw ApiError(409, e.what(), "id_slot", "slot_busy");
  } catch (const runtime::SavedStateError& e) {
    throw ApiError(400, e.what(), "filename", "bad_saved_state");
  } catch (const InvalidArgument& e) {
    throw ApiError(400, e.what(), "id_slot");
  } catch (const Error& e) {
    throw ApiError(500, e.what(), "", "io_error");
  }
  const bool save = action == "save";
  send_json(res, {{"id_slot", id},
                  {"filename", name},
                  {save ? "n_saved" : "n_restored", r.n_tokens},
                  {save ? "n_written" : "n_read", r.bytes},
                  {"timings", {{save ? "save_ms" : "restore_ms", r.seconds * 1e3}}}});
}

}  // namespace

void register_slot_routes(ServerState& st) {
  st.http.Post(R"(/slots/(\d+))", guarded([&st](const httplib::Request& req, httplib::Response& res) {
                 slot_action(st, req, res);
               }));
}

}  // namespace edgellm::server
