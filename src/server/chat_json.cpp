#include "server/chat_json.h"

#include <cstdint>
#include <optional>

#include "util/error.h"

namespace edgellm::server {
namespace {

using ojson = nlohmann::ordered_json;

chat::Value from(const ojson& j, int depth) {
  // Request bodies are already depth-checked; this bounds recursion for any other caller.
  if (depth > 512) throw InvalidArgument("JSON nested more than 512 levels deep");
  switch (j.type()) {
    case ojson::value_t::boolean: return chat::Value::boolean(j.get<bool>());
    case ojson::value_t::number_integer: return chat::Value::integer(j.get<int64_t>());
    case ojson::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return chat::Value::integer(static_cast<int64_t>(u));
      return chat::Value::number(static_cast<double>(u));
    }
    case ojson::value_t::number_float: return chat::Value::number(j.get<double>());
    case ojson::value_t::string: return chat::Value(j.get<std::string>());
    case ojson::value_t::array: {
      std::vector<chat::Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from(e, depth + 1));
      return chat::Value::array(std::move(items));
    }
    case ojson::value_t::object: {
      std::vector<std::pair<std::string, chat::Value>> fields;
      fields.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) fields.emplace_back(it.key(), from(it.value(), depth + 1));
      return chat::Value::object(std::move(fields));
    }
    default: return {};
  }
}

// One call in OpenAI's shape, or nothing (the caller then keeps "tool_calls" as given).
std::optional<chat::ToolCall> typed_call(const ojson& c) {
  if (!c.is_object() || c.size() != 3 || !c.contains("id") || !c["id"].is_string() || !c.contains("type") ||
      !c["type"].is_string() || !c.contains("function"))
    return std::nullopt;
  const auto& f = c["function"];
  if (!f.is_object() || f.size() != 2 || !f.contains("name") || !f["name"].is_string() || !f.contains("arguments"))
    return std::nullopt;
  chat::ToolCall t;
  t.id = c["id"].get<std::string>();
  t.type = c["type"].get<std::string>();
  t.name = f["name"].get<std::string>();
  t.arguments = value_from_json(f["arguments"]);
  return t;
}

}  // namespace

chat::Value value_from_json(const ojson& j) { return from(j, 0); }

ojson value_to_json(const chat::Value& v) {
  using T = chat::Value::Type;
  switch (v.type) {
    case T::Null: return nullptr;
    case T::Bool: return v.b;
    case T::Int: return v.i;
    case T::Float: return v.f;
    case T::String: return v.s;
    case T::Array: {
      ojson a = ojson::array();
      for (const auto& e : v.items) a.push_back(value_to_json(e));
      return a;
    }
    case T::Object: {
      ojson o = ojson::object();
      for (const auto& [k, e] : v.fields) o[k] = value_to_json(e);
      return o;
    }
  }
  return nullptr;
}

std::vector<chat::Message> messages_from_json(const ojson& messages) {
  if (!messages.is_array()) throw InvalidArgument("chat messages must be a JSON array");
  std::vector<chat::Message> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& j = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!j.is_object() || !j.contains("role") || !j["role"].is_string())
      throw InvalidArgument(at + " must be an object with a string \"role\"");
    chat::Message m;
    m.content_kind = chat::ContentKind::Absent;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const ojson& v = it.value();
      if (key == "role") {
        m.role = v.get<std::string>();
      } else if (key == "content") {
        if (v.is_string()) {
          m.content = v.get<std::string>();
          m.content_kind = chat::ContentKind::Text;
        } else if (v.is_null()) {
          m.content_kind = chat::ContentKind::Null;
        } else if (v.is_array()) {
          m.content_kind = chat::ContentKind::Parts;
          for (const auto& part : v) m.parts.push_back(value_from_json(part));
        } else {
          throw InvalidArgument(at + ".content must be a string, null or a list of parts");
        }
      } else if (key == "name" && v.is_string() && !v.get<std::string>().empty()) {
        m.name = v.get<std::string>();
      } else if (key == "tool_call_id" && v.is_string() && !v.get<std::string>().empty()) {
        m.tool_call_id = v.get<std::string>();
      } else if (key == "tool_calls" && v.is_array() && !v.empty()) {
        std::vector<chat::ToolCall> calls;
        for (const auto& c : v) {
          auto t = typed_call(c);
          if (!t) break;
          calls.push_back(std::move(*t));
        }
        if (calls.size() == v.size()) m.tool_calls = std::move(calls);
        else m.extra.emplace_back(key, value_from_json(v));
      } else {
        m.extra.emplace_back(key, value_from_json(v));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

ojson message_to_json(const chat::Message& m) {
  ojson j = ojson::object();
  j["role"] = m.role;
  switch (m.content_kind) {
    case chat::ContentKind::Text: j["content"] = m.content; break;
    case chat::ContentKind::Null: j["content"] = nullptr; break;
    case chat::ContentKind::Parts: j["content"] = value_to_json(chat::Value::array(m.parts)); break;
    case chat::ContentKind::Absent: break;
  }
  if (!m.name.empty()) j["name"] = m.name;
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.tool_calls.empty()) {
    ojson calls = ojson::array();
    for (const auto& c : m.tool_calls)
      calls.push_back({{"id", c.id}, {"type", c.type},
                       {"function", {{"name", c.name}, {"arguments", value_to_json(c.arguments)}}}});
    j["tool_calls"] = std::move(calls);
  }
  for (const auto& [k, v] : m.extra) j[k] = value_to_json(v);
  return j;
}

}  // namespace edgellm::server
