// libFuzzer target for the cloud client's SSE parser (a hostile or broken cloud endpoint
// controls these bytes). Input: the response body. It is parsed twice, whole and cut into
// random chunks (network reads split anywhere: inside a line, a UTF-8 character or "\r\n");
// both parses must agree on every delta and on the final state.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "hybrid/cloud_client.h"

using namespace edgellm;

namespace {

struct Outcome {
  std::vector<std::string> deltas;
  bool ok = false, done = false, cancelled = false, remote_error = false, any_event = false;
  std::string finish_reason, error, tool_calls;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  bool operator==(const Outcome&) const = default;
};

// stop_after: the consumer cancels after that many deltas (a client that went away).
Outcome run(const std::string& body, const std::vector<size_t>& cuts, size_t stop_after) {
  Outcome o;
  hybrid::SseParser p;
  const hybrid::DeltaFn on_delta = [&](std::string_view d) {
    o.deltas.emplace_back(d);
    return o.deltas.size() < stop_after;
  };
  bool ok = true;
  size_t at = 0;
  for (size_t cut : cuts) {
    if (!(ok = p.feed(std::string_view(body).substr(at, cut - at), on_delta))) break;
    at = cut;
  }
  if (ok) ok = p.feed(std::string_view(body).substr(at), on_delta) && p.finish(on_delta);
  o.ok = ok;
  o.done = p.done();
  o.cancelled = p.cancelled();
  o.remote_error = p.remote_error();
  o.any_event = p.any_event();
  o.finish_reason = p.finish_reason();
  o.error = p.error();
  o.tool_calls = p.tool_calls().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  o.prompt_tokens = p.prompt_tokens();
  o.completion_tokens = p.completion_tokens();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  fuzz::Rng rng(body);
  const size_t stop_after = rng.below(4) == 0 ? 1 + rng.below(4) : SIZE_MAX;
  std::vector<size_t> cuts;
  for (size_t at = 0; size > 0;) {
    at += 1 + rng.below(std::min<size_t>(size, 24));
    if (at >= size) break;
    cuts.push_back(at);
  }
  const Outcome whole = run(body, {}, stop_after);
  const Outcome split = run(body, cuts, stop_after);
  fuzz::check(whole == split, "sse_fuzz", "chunked parse agrees with whole parse");
  if (whole.ok) fuzz::check(whole.error.empty(), "sse_fuzz", "a successful parse has no error");
  return 0;
}
