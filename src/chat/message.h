#pragma once
// A conversation as the engine takes it: plain types, no JSON library. The front ends convert
// from what they receive (the server and the CLI from OpenAI's JSON, server/chat_json.h; the C
// API from its structs); the runtime and the chat templates see only these.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgellm::chat {

// A JSON-shaped value, for the open-ended parts of a conversation that templates read as they
// are: tool-call arguments, tool definitions (JSON Schema), content parts, message fields the
// engine has no name for. Objects keep their key order: templates that print them (tojson)
// make it visible in the prompt.
struct Value {
  enum class Type { Null, Bool, Int, Float, String, Array, Object };
  Type type = Type::Null;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<Value> items;                          // Array
  std::vector<std::pair<std::string, Value>> fields;  // Object, in order

  Value() = default;
  Value(std::string v) : type(Type::String), s(std::move(v)) {}
  Value(const char* v) : Value(std::string(v)) {}
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value array(std::vector<Value> items = {});
  static Value object(std::vector<std::pair<std::string, Value>> fields = {});

  bool is_null() const { return type == Type::Null; }
  bool is_string() const { return type == Type::String; }
  // The value of `key` in an object (the first, if repeated); nullptr if absent or not an object.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  bool operator==(const Value& o) const;
};

// A call the assistant made. Templates see {"id", "type", "function": {"name", "arguments"}}.
struct ToolCall {
  std::string id{};  // "" when the client gave none
  std::string type = "function";
  std::string name{};
  // An object (the convention HF templates are written for) or a string of JSON (OpenAI's wire
  // form), kept as given: templates print the two differently.
  Value arguments = Value::object();
};

// How the content reaches the template. OpenAI allows null (an assistant turn that only calls
// tools) and a list of parts besides a string, and templates tell those apart from "".
enum class ContentKind { Text, Null, Parts, Absent };

// Aggregate, so {"user", "Hi"} is a message (the fields after content have initializers, which
// keeps -Wmissing-field-initializers quiet).
struct Message {
  std::string role;  // "system", "user", "assistant", "tool", or what a template knows
  std::string content;
  ContentKind content_kind = ContentKind::Text;
  std::vector<Value> parts{};   // ContentKind::Parts: objects such as {"type": "text", "text": ...}
  std::string name{};           // a tool result's tool name; "" for none
  std::string tool_call_id{};   // the call a tool result answers; "" for none
  std::vector<ToolCall> tool_calls{};  // an assistant's calls; empty for none
  // Other keys a template may read (e.g. "reasoning_content"), in order, after the ones above.
  std::vector<std::pair<std::string, Value>> extra{};
};

// The texts of a message that come from its author (not the template): its content when it is
// text, else the string "text" of each content part. The engine keeps control tokens out of them.
std::vector<std::string> message_texts(const Message& m);

}  // namespace edgellm::chat
