#pragma once
/// @file JSON serialisation that matches Go's encoding/json byte for byte, which is what
/// Kubernetes clients and tests compare against.

#include <nlohmann/json.hpp>
#include <string>

namespace gma::core {

/// Key order is insertion order, as Go emits struct fields in declaration order.
using json = nlohmann::ordered_json;

/// Compact JSON as Go's json.Encoder writes it: no spaces, '<' '>' '&' U+2028 U+2029 escaped
/// as \u sequences, invalid UTF-8 replaced, and a trailing newline.
std::string to_go_json(const json& value);

}  // namespace gma::core
