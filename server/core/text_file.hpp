#pragma once
/// @file Whole-file reads for configuration: certificates, keys, tokens, rules files.
/// Thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gma::core {

/// The file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_text_file(const std::string& path);

/// The file's bytes; throws std::runtime_error("cannot read <path>") when it cannot be opened.
std::string read_text_file_or_throw(const std::string& path);

/// The contents of the files in `paths` joined with NUL bytes (one file: its contents), to
/// compare sets of files (a certificate and its key) as one. nullopt when one cannot be read,
/// logged as a warning that names `what` and the file.
std::optional<std::string> read_files_fingerprint(const std::vector<std::string>& paths,
                                                  std::string_view what);

}  // namespace gma::core
