#pragma once
/// @file Minimal leveled logger in klog's line format ("I1128 12:00:00.000000] message").
/// Thread-safe: each line is written with one call under a mutex.

#include <string_view>

namespace gma::core::log {

/// Sets the verbosity for verbose() lines (the --v flag). Call once at start-up.
void set_verbosity(int level) noexcept;

void info(std::string_view message);
void warning(std::string_view message);
void error(std::string_view message);
/// Logged only when the verbosity is at least `level`.
void verbose(int level, std::string_view message);

}  // namespace gma::core::log
