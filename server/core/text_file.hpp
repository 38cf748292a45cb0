#pragma once
/// @file Whole-file reads for configuration: certificates, keys, tokens, rules files.

#include <optional>
#include <string>

namespace gma::core {

/// The file's bytes, or nullopt when it cannot be opened. Thread-safe.
std::optional<std::string> read_text_file(const std::string& path);

/// The file's bytes; throws std::runtime_error("cannot read <path>") when it cannot be opened.
std::string read_text_file_or_throw(const std::string& path);

}  // namespace gma::core
