#pragma once
// OpenAI tool calling on top of a chat template: validating `tools` / `tool_choice`, turning
// the conversation (assistant tool_calls, role "tool" results) into messages the model's
// template can render, the grammar that forces a call, and parsing calls out of the output.
//
// Calls use one text format whatever the template: <tool_call>\n{"name": ..., "arguments":
// {...}}\n</tool_call> (the Hermes / Qwen 2.5 convention). Templates that do not know about
// tools get the definitions and this format in the system message.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sampling/grammar.h"

namespace edgellm::server {

using ojson = nlohmann::ordered_json;

enum class ToolMode { kNone, kAuto, kRequired, kNamed };

struct ToolSpec {
  std::string name;
  ojson parameters;  // JSON schema of the arguments (an object schema)
};

struct ToolConfig {
  std::vector<ToolSpec> tools;
  ojson tools_json = nullptr;  // the request's tools array as sent (for templates)
  ToolMode mode = ToolMode::kNone;
  std::string forced;  // kNamed: the function that must be called
  bool active() const { return mode != ToolMode::kNone && !tools.empty(); }
};

struct ToolCall {
  std::string id, name, arguments;  // arguments: JSON text
};

inline constexpr const char* kToolCallOpen = "<tool_call>";
inline constexpr const char* kToolCallClose = "</tool_call>";

// Reads "tools" and "tool_choice" from a chat request; throws ApiError (400) on bad input.
ToolConfig parse_tool_config(const ojson& body);

// Validates `messages` and rewrites them for rendering: text parts joined, "developer" as
// "system", assistant tool_calls arguments as objects (native templates) or inline
// <tool_call> text, tool results as user turns in <tool_response> (other templates), and the
// tool definitions added to the system message when the template does not render tools.
// Throws ApiError (400) naming the offending message.
ojson prepare_messages(const ojson& messages, const ToolConfig& tools, bool template_renders_tools);

// Grammar for exactly one call of one of `tools` in the text format above.
// lazy: the grammar of what follows the opening tag (for auto mode's trigger).
std::shared_ptr<const sampling::Grammar> tool_call_grammar(const std::vector<ToolSpec>& tools, bool lazy);

struct ParsedOutput {
  std::string content;  // text outside the calls
  std::vector<ToolCall> calls;
};
// Extracts well-formed calls of declared tools; anything else stays content.
ParsedOutput parse_tool_output(const std::string& text, const ToolConfig& tools);

// Streaming helper: passes text through until a call may be starting, then holds the rest
// back (the caller parses the whole output at the end).
class ToolStreamFilter {
 public:
  // Returns the text that is certainly content.
  std::string feed(const std::string& piece);
  // Text held back because it looked like the start of the opening tag, but is not.
  std::string held() const { return in_call_ ? std::string() : pending_; }
  bool in_call() const { return in_call_; }

 private:
  std::string pending_;
  bool in_call_ = false;
};

std::string new_call_id();

}  // namespace edgellm::server
