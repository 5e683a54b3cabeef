#pragma once
// Orchestrator's per-request state, shared by its source files (orchestrator.cpp, the routed
// path; orchestrator_verify.cpp, device drafts verified by the cloud). Not a public header.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hybrid/orchestrator.h"
#include "hybrid/redact.h"

namespace edgellm::hybrid {

struct Orchestrator::Prepared {
  const HybridRequest* req = nullptr;
  nlohmann::json cloud_body;              // what may go to the cloud (stripped, then redacted)
  std::vector<nlohmann::json*> slots;              // every user-visible string inside cloud_body
  std::vector<std::vector<PiiSpan>> spans;  // findings per slot
  std::string prompt_concat;              // for the audit hash only
  RequestFeatures features;
  Redactor redactor;
  bool redacted = false;
  Decision decision;
};

}  // namespace edgellm::hybrid
