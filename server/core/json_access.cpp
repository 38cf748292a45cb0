#include "server/core/json_access.hpp"

namespace gma::core {
namespace {

using nlohmann::json;

/// object[key] when present, else nullptr; never inserts, never throws.
const json* find(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

}  // namespace

std::string string_at(const json& object, std::string_view key, std::string fallback) {
  const json* value = find(object, key);
  return value && value->is_string() ? value->get<std::string>() : std::move(fallback);
}

bool bool_at(const json& object, std::string_view key, bool fallback) {
  const json* value = find(object, key);
  return value && value->is_boolean() ? value->get<bool>() : fallback;
}

const json& object_at(const json& object, std::string_view key) {
  static const json empty = json::object();
  const json* value = find(object, key);
  return value && value->is_object() ? *value : empty;
}

const json& array_at(const json& object, std::string_view key) {
  static const json empty = json::array();
  const json* value = find(object, key);
  return value && value->is_array() ? *value : empty;
}

}  // namespace gma::core
