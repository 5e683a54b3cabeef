#include "io/tensor_type.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace edgellm::io {
namespace {
struct Entry {
  TensorType type;
  TypeTraits traits;
};
constexpr std::array<Entry, 20> kTable{{
    {TensorType::F32, {"F32", 1, 4}},       {TensorType::F16, {"F16", 1, 2}},
    {TensorType::Q4_0, {"Q4_0", 32, 18}},   {TensorType::Q4_1, {"Q4_1", 32, 20}},
    {TensorType::Q5_0, {"Q5_0", 32, 22}},   {TensorType::Q5_1, {"Q5_1", 32, 24}},
    {TensorType::Q8_0, {"Q8_0", 32, 34}},   {TensorType::Q8_1, {"Q8_1", 32, 36}},
    {TensorType::Q2_K, {"Q2_K", 256, 84}},  {TensorType::Q3_K, {"Q3_K", 256, 110}},
    {TensorType::Q4_K, {"Q4_K", 256, 144}}, {TensorType::Q5_K, {"Q5_K", 256, 176}},
    {TensorType::Q6_K, {"Q6_K", 256, 210}}, {TensorType::Q8_K, {"Q8_K", 256, 292}},
    {TensorType::I8, {"I8", 1, 1}},         {TensorType::I16, {"I16", 1, 2}},
    {TensorType::I32, {"I32", 1, 4}},       {TensorType::I64, {"I64", 1, 8}},
    {TensorType::F64, {"F64", 1, 8}},       {TensorType::BF16, {"BF16", 1, 2}},
}};
}  // namespace

std::optional<TypeTraits> type_traits(uint32_t type_id) {
  for (const Entry& e : kTable)
    if (static_cast<uint32_t>(e.type) == type_id) return e.traits;
  return std::nullopt;
}

std::string_view type_name(TensorType t) {
  auto tt = type_traits(static_cast<uint32_t>(t));
  return tt ? tt->name : std::string_view("unknown");
}

std::optional<TensorType> type_from_name(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (const Entry& e : kTable)
    if (e.traits.name == upper) return e.type;
  return std::nullopt;
}

}  // namespace edgellm::io
