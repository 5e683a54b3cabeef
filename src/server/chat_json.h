#pragma once
// OpenAI's JSON form of a conversation to the engine's chat types (chat/message.h) and back.
// JSON stays in the front ends: the server and the CLI convert here, the runtime takes
// chat::Message.
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/message.h"

namespace edgellm::server {

// Any JSON value, objects in their key order (an unsigned integer beyond int64 becomes a float).
chat::Value value_from_json(const nlohmann::ordered_json& j);
nlohmann::ordered_json value_to_json(const chat::Value& v);

// The messages as a client sent them, nothing normalised (the server's own rules are in
// prepare_messages): "role", "content" (string, null, a list of parts, or absent), "name" and
// "tool_call_id" strings, and "tool_calls" in OpenAI's shape ({"id", "type", "function":
// {"name", "arguments"}}) become typed fields; anything else a template might read (other keys,
// or tool calls in another shape) is kept in Message::extra as given. InvalidArgument, naming
// the message, for a non-array, a message that is not an object or has no string "role", and
// content of another type.
std::vector<chat::Message> messages_from_json(const nlohmann::ordered_json& messages);
// The inverse: OpenAI's message object.
nlohmann::ordered_json message_to_json(const chat::Message& m);

}  // namespace edgellm::server
