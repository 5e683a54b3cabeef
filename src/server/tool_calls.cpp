#include "server/tool_calls.h"

#include <atomic>
#include <chrono>
#include <random>

#include "hybrid/json_depth.h"
#include "sampling/json_schema.h"
#include "server/api_error.h"
#include "server/grammar_constraint.h"
#include "util/error.h"

namespace edgellm::server {
namespace {

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

std::string text_of(const ojson& content, const std::string& where) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content) {
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
        throw ApiError(400, where + ": each content part must be an object with a \"type\"", "messages");
      const auto type = part["type"].get<std::string>();
      if (type != "text")
        throw ApiError(400, where + ": content parts of type \"" + type + "\" are not supported (text only)",
                       "messages");
      if (!part.contains("text") || !part["text"].is_string())
        throw ApiError(400, where + ": a text part needs a string \"text\"", "messages");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  throw ApiError(400, where + ": content must be a string, an array of text parts or null", "messages");
}

std::string tools_instructions(const ToolConfig& tc) {
  std::string s =
      "You may call functions to help answer. The functions you can call are described in JSON "
      "below, one per line, between <tools> and </tools>:\n<tools>\n";
  for (const auto& t : tc.tools_json) s += t.dump() + "\n";
  s += "</tools>\nTo call a function, reply with exactly:\n<tool_call>\n{\"name\": \"<function name>\", "
       "\"arguments\": {<the arguments as JSON>}}\n</tool_call>\nFunction results come back to you between "
       "<tool_response> and </tool_response>.";
  if (tc.mode == ToolMode::kAuto) s += " If no function is needed, answer the user directly.";
  return s;
}

std::string call_text(const std::string& name, const ojson& args) {
  return std::string(kToolCallOpen) + "\n" + ojson{{"name", name}, {"arguments", args}}.dump() + "\n" +
         kToolCallClose;
}

}  // namespace

std::string new_call_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::mt19937_64 rng(seed ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull));
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += alphabet[rng() % 62];
  return id;
}

ToolConfig parse_tool_config(const ojson& body) {
  ToolConfig tc;
  const bool has_tools = body.contains("tools") && !body["tools"].is_null();
  if (has_tools) {
    const auto& tools = body["tools"];
    if (!tools.is_array()) throw ApiError(400, "\"tools\" must be an array of function definitions", "tools");
    for (size_t i = 0; i < tools.size(); ++i) {
      const auto& t = tools[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
          !t["function"].is_object())
        throw ApiError(400, where + " must be {\"type\": \"function\", \"function\": {...}}", "tools");
      const auto& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || !valid_name(f["name"].get<std::string>()))
        throw ApiError(400, where + ".function.name must be 1-64 letters, digits, '_' or '-'", "tools");
      if (f.contains("description") && !f["description"].is_string() && !f["description"].is_null())
        throw ApiError(400, where + ".function.description must be a string", "tools");
      ToolSpec spec;
      spec.name = f["name"].get<std::string>();
      for (const auto& other : tc.tools)
        if (other.name == spec.name) throw ApiError(400, where + ": duplicate function name " + spec.name, "tools");
      if (f.contains("parameters") && !f["parameters"].is_null()) {
        if (!f["parameters"].is_object())
          throw ApiError(400, where + ".function.parameters must be a JSON schema object", "tools");
        spec.parameters = f["parameters"];
        // Arguments are always a JSON object (OpenAI's contract, and what parse_tool_output
        // accepts): a schema without a type gets "object"; any other type is refused here
        // rather than letting the forced call write arguments that can never be parsed.
        const auto type = spec.parameters.find("type");
        if (type == spec.parameters.end())
          spec.parameters["type"] = "object";
        else if (!type->is_string() || type->get<std::string>() != "object")
          throw ApiError(400, where + ".function.parameters must describe an object (\"type\": \"object\")", "tools");
      } else {
        spec.parameters = ojson{{"type", "object"}};
      }
      tc.tools.push_back(std::move(spec));
    }
    tc.tools_json = tools;
  }
  tc.mode = tc.tools.empty() ? ToolMode::kNone : ToolMode::kAuto;
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    const auto& ch = body["tool_choice"];
    if (ch.is_string()) {
      const auto s = ch.get<std::string>();
      if (s == "none") tc.mode = ToolMode::kNone;
      else if (s == "auto") tc.mode = tc.tools.empty() ? ToolMode::kNone : ToolMode::kAuto;
      else if (s == "required") tc.mode = ToolMode::kRequired;
      else throw ApiError(400, "tool_choice must be \"none\", \"auto\", \"required\" or a function choice", "tool_choice");
    } else if (ch.is_object() && ch.value("type", "") == "function" && ch.contains("function") &&
               ch["function"].is_object() && ch["function"].contains("name") && ch["function"]["name"].is_string()) {
      tc.mode = ToolMode::kNamed;
      tc.forced = ch["function"]["name"].get<std::string>();
      bool found = false;
      for (const auto& t : tc.tools) found |= t.name == tc.forced;
      if (!found) throw ApiError(400, "tool_choice names function \"" + tc.forced + "\" which is not in tools", "tool_choice");
    } else {
      throw ApiError(400, "tool_choice must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                     "tool_choice");
    }
    if ((tc.mode == ToolMode::kRequired) && tc.tools.empty())
      throw ApiError(400, "tool_choice \"required\" needs a non-empty \"tools\" array", "tool_choice");
  }
  return tc;
}

ojson prepare_messages(const ojson& messages, const ToolConfig& tc, bool native) {
  if (!messages.is_array() || messages.empty())
    throw ApiError(400, "\"messages\" must be a non-empty array", "messages");
  ojson out = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw ApiError(400, where + " must be an object", "messages");
    if (!m.contains("role") || !m["role"].is_string()) throw ApiError(400, where + " needs a string \"role\"", "messages");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw ApiError(400, where + ": unknown role \"" + role + "\" (system, developer, user, assistant, tool)", "messages");
    const bool has_calls = role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null();
    if (!m.contains("content") && !has_calls) throw ApiError(400, where + " needs \"content\"", "messages");
    std::string content = text_of(m.contains("content") ? m["content"] : ojson(nullptr), where);
    ojson msg = {{"role", role}, {"content", content}};
    if (m.contains("name") && m["name"].is_string()) msg["name"] = m["name"];

    if (has_calls) {
      const auto& calls = m["tool_calls"];
      if (!calls.is_array()) throw ApiError(400, where + ".tool_calls must be an array", "messages");
      ojson native_calls = ojson::array();
      for (const auto& c : calls) {
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
            !c["function"].contains("name") || !c["function"]["name"].is_string())
          throw ApiError(400, where + ".tool_calls entries need function.name", "messages");
        const auto& f = c["function"];
        ojson args = ojson::object();
        if (f.contains("arguments")) {
          if (f["arguments"].is_string()) {
            args = ojson::parse(f["arguments"].get<std::string>(), nullptr, false);
            if (args.is_discarded())
              throw ApiError(400, where + ".tool_calls: function.arguments is not valid JSON", "messages");
          } else if (f["arguments"].is_object()) {
            args = f["arguments"];
          } else {
            throw ApiError(400, where + ".tool_calls: function.arguments must be a JSON string", "messages");
          }
        }
        const auto name = f["name"].get<std::string>();
        if (native) {
          native_calls.push_back({{"id", c.value("id", "")}, {"type", "function"},
                                  {"function", {{"name", name}, {"arguments", args}}}});
        } else {
          if (!content.empty()) content += "\n";
          content += call_text(name, args);
        }
      }
      if (native) {
        msg["tool_calls"] = native_calls;
      } else {
        msg["content"] = content;
      }
    }
    if (role == "tool") {
      if (m.contains("tool_call_id") && !m["tool_call_id"].is_string())
        throw ApiError(400, where + ".tool_call_id must be a string", "messages");
      if (native) {
        if (m.contains("tool_call_id")) msg["tool_call_id"] = m["tool_call_id"];
      } else {
        msg = {{"role", "user"}, {"content", "<tool_response>\n" + content + "\n</tool_response>"}};
      }
    }
    // Templates that insist on alternating turns: fold consecutive same-role turns together.
    if (!native && !out.empty() && out.back()["role"] == msg["role"] && !msg.contains("tool_calls") &&
        msg["role"] != "system") {
      out.back()["content"] = out.back()["content"].get<std::string>() + "\n" + msg["content"].get<std::string>();
      continue;
    }
    out.push_back(std::move(msg));
  }
  if (!native && tc.active()) {
    const std::string instr = tools_instructions(tc);
    if (out[0]["role"] == "system") out[0]["content"] = out[0]["content"].get<std::string>() + "\n\n" + instr;
    else out.insert(out.begin(), ojson{{"role", "system"}, {"content", instr}});
  }
  return out;
}

std::shared_ptr<const sampling::Grammar> tool_call_grammar(const std::vector<ToolSpec>& tools, bool lazy) {
  ojson alts = ojson::array();
  for (const auto& t : tools) {
    ojson s = {{"type", "object"},
               {"properties", {{"name", {{"const", t.name}}}, {"arguments", t.parameters}}},
               {"required", {"name", "arguments"}},
               {"additionalProperties", false}};
    alts.push_back(std::move(s));
  }
  const ojson schema = alts.size() == 1 ? alts[0] : ojson{{"anyOf", alts}};
  sampling::JsonSchemaOptions opts;
  opts.strict = false;  // tool schemas often carry keywords (minimum, format) we cannot enforce
  auto inner = sampling::compile_json_schema(schema, opts);
  const std::string close = std::string("\n") + kToolCallClose;
  if (lazy) return wrap_grammar(*inner, {"\n", "", " "}, close);
  return wrap_grammar(*inner, {std::string(kToolCallOpen) + "\n"}, close);
}

ParsedOutput parse_tool_output(const std::string& text, const ToolConfig& tc) {
  ParsedOutput out;
  std::string rest;
  size_t pos = 0;
  const std::string open = kToolCallOpen, close = kToolCallClose;
  auto declared = [&](const std::string& n) {
    for (const auto& t : tc.tools)
      if (t.name == n) return true;
    return false;
  };
  auto try_call = [&](const std::string& body) -> bool {
    // The model's text can nest as deep as max_tokens allows; copying and dumping recurse.
    if (!hybrid::json_text_within_depth(body)) return false;
    auto j = ojson::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
    const auto name = j["name"].get<std::string>();
    if (!declared(name)) return false;
    const ojson args = j.contains("arguments") ? j["arguments"] : j.contains("parameters") ? j["parameters"] : ojson::object();
    if (!args.is_object()) return false;
    out.calls.push_back({new_call_id(), name, args.dump()});
    return true;
  };
  while (pos < text.size()) {
    const size_t a = text.find(open, pos);
    if (a == std::string::npos) break;
    size_t b = text.find(close, a + open.size());
    const size_t body_end = b == std::string::npos ? text.size() : b;
    const std::string body = text.substr(a + open.size(), body_end - a - open.size());
    if (try_call(body)) {
      rest += text.substr(pos, a - pos);
      pos = b == std::string::npos ? text.size() : b + close.size();
    } else {
      rest += text.substr(pos, a + open.size() - pos);
      pos = a + open.size();
    }
  }
  rest += text.substr(std::min(pos, text.size()));
  if (out.calls.empty()) {
    // Some models answer with the bare call object (Llama 3.1 style).
    size_t s = text.find_first_not_of(" \t\r\n");
    size_t e = text.find_last_not_of(" \t\r\n");
    if (s != std::string::npos && text[s] == '{' && text[e] == '}' && try_call(text.substr(s, e - s + 1))) {
      out.content.clear();
      return out;
    }
    out.content = text;
    return out;
  }
  const size_t s = rest.find_first_not_of(" \t\r\n");
  const size_t e = rest.find_last_not_of(" \t\r\n");
  out.content = s == std::string::npos ? "" : rest.substr(s, e - s + 1);
  return out;
}

std::string ToolStreamFilter::feed(const std::string& piece) {
  if (in_call_) return "";
  pending_ += piece;
  const std::string open = kToolCallOpen;
  const size_t at = pending_.find(open);
  if (at != std::string::npos) {
    in_call_ = true;
    std::string out = pending_.substr(0, at);
    pending_.clear();
    return out;
  }
  // Keep back the longest suffix that is a prefix of the opening tag.
  size_t keep = 0;
  for (size_t k = std::min(open.size() - 1, pending_.size()); k > 0; --k)
    if (pending_.compare(pending_.size() - k, k, open, 0, k) == 0) {
      keep = k;
      break;
    }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

}  // namespace edgellm::server
