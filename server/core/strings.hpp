#pragma once
/// @file Byte-level string helpers shared by the transport, auth and the adapters: ASCII case
/// folding (HTTP header names, Kubernetes verbs, label prefixes) and URI percent-decoding.
/// Pure functions; thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gma::core {

/// `s` with A-Z folded to a-z; every other byte (UTF-8 included) is kept as it is, so the
/// result never depends on the process locale.
std::string ascii_lower(std::string_view s);

/// At most `max_bytes` of `s` for a log line or a readiness reason: control characters (a
/// newline would start a fake log line) become spaces, and a cut is marked with "...".
std::string printable(std::string_view s, std::size_t max_bytes);

/// The values with `separator` between them ("a|b|c").
std::string join(const std::vector<std::string>& values, std::string_view separator);

/// RFC 3986 percent-decoding; with `plus_is_space`, '+' is a space as in
/// application/x-www-form-urlencoded query strings. nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace gma::core
