#pragma once
/// @file Minimal leveled logger in klog's line format ("I1128 12:00:00.000000] message").
/// Thread-safe: each line is written with one call under a mutex; checking a level is one
/// relaxed atomic read.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gma::core::log {

namespace detail {
/// The --v level; inline so that enabled() is a load, not a call, on every request.
inline std::atomic<int> verbosity{0};
}  // namespace detail

/// Sets the verbosity for verbose() lines (the --v flag). Call once at start-up.
void set_verbosity(int level) noexcept;

/// Whether verbose(level, ...) lines are written: check it before building a line that costs
/// something (a request path, a number to format) on a path every request takes.
inline bool enabled(int level) noexcept {
  return detail::verbosity.load(std::memory_order_relaxed) >= level;
}

void info(std::string_view message);
void warning(std::string_view message);
void error(std::string_view message);
/// Logged only when the verbosity is at least `level`. The message is built by the caller
/// either way; on a hot path use the overload below, or enabled().
void verbose(int level, std::string_view message);

/// Logged only when the verbosity is at least `level`; `make_message` (returning anything a
/// std::string_view can be made from) runs only then, so a line that is off costs no
/// formatting and no allocation.
template <class MakeMessage>
requires std::invocable<MakeMessage&>
void verbose(int level, MakeMessage&& make_message) {
  if (enabled(level)) verbose(level, std::string_view(make_message()));
}

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
