#include "chat/message.h"

namespace edgellm::chat {

Value Value::boolean(bool v) {
  Value x;
  x.type = Type::Bool;
  x.b = v;
  return x;
}

Value Value::integer(int64_t v) {
  Value x;
  x.type = Type::Int;
  x.i = v;
  return x;
}

Value Value::number(double v) {
  Value x;
  x.type = Type::Float;
  x.f = v;
  return x;
}

Value Value::array(std::vector<Value> items) {
  Value x;
  x.type = Type::Array;
  x.items = std::move(items);
  return x;
}

Value Value::object(std::vector<std::pair<std::string, Value>> fields) {
  Value x;
  x.type = Type::Object;
  x.fields = std::move(fields);
  return x;
}

const Value* Value::find(std::string_view key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

Value* Value::find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value&>(*this).find(key));
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  switch (type) {
    case Type::Null: return true;
    case Type::Bool: return b == o.b;
    case Type::Int: return i == o.i;
    case Type::Float: return f == o.f;
    case Type::String: return s == o.s;
    case Type::Array: return items == o.items;
    case Type::Object: return fields == o.fields;
  }
  return false;
}

std::vector<std::string> message_texts(const Message& m) {
  std::vector<std::string> out;
  if (m.content_kind == ContentKind::Text) {
    out.push_back(m.content);
  } else if (m.content_kind == ContentKind::Parts) {
    for (const auto& part : m.parts)
      if (const Value* t = part.find("text"); t && t->is_string()) out.push_back(t->s);
  }
  return out;
}

}  // namespace edgellm::chat
