#pragma once
/// @file Checked reads from JSON a peer sent (Prometheus, the Kubernetes API): a missing key or
/// a value of another type gives the fallback instead of an exception. nlohmann's value()
/// throws type_error on a wrong type, which in a watch or discovery loop ended the loop.
/// Pure functions; thread-safe.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace gma::core {

/// object[key] if `object` is an object and it holds a string there, else `fallback`.
std::string string_at(const nlohmann::json& object, std::string_view key,
                      std::string fallback = {});
/// object[key] if it is a boolean, else `fallback`.
bool bool_at(const nlohmann::json& object, std::string_view key, bool fallback);
/// object[key] if it is an object, else an empty object. The reference lives as long as
/// `object` (or for ever, for the empty one).
const nlohmann::json& object_at(const nlohmann::json& object, std::string_view key);
/// object[key] if it is an array, else an empty array; lifetime as object_at.
const nlohmann::json& array_at(const nlohmann::json& object, std::string_view key);

}  // namespace gma::core
