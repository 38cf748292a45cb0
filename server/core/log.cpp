#include "server/core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace gma::core::log {
namespace {

std::mutex g_mutex;

void write(char severity, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%c%02d%02d %02d:%02d:%02d.%06lld] %.*s\n", severity, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(micros),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace

void set_verbosity(int level) noexcept { detail::verbosity = level; }
void info(std::string_view message) { write('I', message); }
void warning(std::string_view message) { write('W', message); }
void error(std::string_view message) { write('E', message); }
std::optional<std::uint64_t> rate_limited::count() {
  ++pending_;
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto due = next_line_.load();
  if (now < due) return std::nullopt;
  // One thread wins the line; the others keep counting for the next one.
  if (!next_line_.compare_exchange_strong(due, now + interval_.count())) return std::nullopt;
  return pending_.exchange(0);
}

void verbose(int level, std::string_view message) {
  if (enabled(level)) write('I', message);
}

}  // namespace gma::core::log
