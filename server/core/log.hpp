#pragma once
/// @file Minimal leveled logger in klog's line format ("I1128 12:00:00.000000] message").
/// Thread-safe: each line is written with one call under a mutex.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gma::core::log {

/// Sets the verbosity for verbose() lines (the --v flag). Call once at start-up.
void set_verbosity(int level) noexcept;

void info(std::string_view message);
void warning(std::string_view message);
void error(std::string_view message);
/// Logged only when the verbosity is at least `level`.
void verbose(int level, std::string_view message);

/// Counts an event that can repeat fast (a refused connection, a failed accept) so that it is
/// logged at most once per interval, with how often it happened: a flood costs one line, not
/// one line per event. Thread-safe and lock-free.
class rate_limited {
 public:
  explicit rate_limited(std::chrono::steady_clock::duration interval) : interval_(interval) {}

  /// Counts one event; returns how many happened since the last line when a line is due now.
  std::optional<std::uint64_t> count();

 private:
  const std::chrono::steady_clock::duration interval_;
  std::atomic<std::uint64_t> pending_{0};
  std::atomic<std::chrono::steady_clock::rep> next_line_{0};
};

}  // namespace gma::core::log
