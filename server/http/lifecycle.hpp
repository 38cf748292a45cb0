#pragma once
/// @file The process around the server: worker threads, SIGHUP, and the graceful stop on
/// SIGTERM/SIGINT (stop accepting, let running requests finish for a bounded time, stop).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "server/http/server.hpp"

namespace gma::http {

struct lifecycle_options {
  /// Threads that run the io_context, the calling one included.
  unsigned threads = 2;
  /// How long requests being answered may take after SIGTERM; well inside Kubernetes' 30 s
  /// termination grace period.
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};
  /// Called on an io_context thread for every SIGHUP; may be empty.
  std::function<void()> on_hangup;
  /// Called once on SIGTERM or SIGINT, before the listener closes; may be empty.
  std::function<void()> on_stop;
};

/// Raises the soft limit of open files (RLIMIT_NOFILE) to the hard limit, as Go programs do
/// at start: containerd 2 starts containers with a soft limit of 1024. Returns the soft limit
/// now in force, and logs a raise.
std::uint64_t raise_open_file_limit();

/// File descriptors kept out of the connection budget: the Prometheus and Kubernetes clients'
/// connections, watches, files read on reloads, the listener and stdio.
inline constexpr std::uint64_t kReservedDescriptors = 64;

/// How many client connections may be open at once with `open_file_limit` descriptors:
/// `requested` (--max-open-connections), or fewer so that kReservedDescriptors stay free, with
/// a warning that says so. Accepting beyond the limit would fail with EMFILE instead.
int connection_budget(int requested, std::uint64_t open_file_limit);

/// Runs `ioc` on `options.threads` threads until SIGTERM or SIGINT. Then closes `acceptor`,
/// waits until `in_flight` is empty or the drain timeout passes, stops `ioc`, joins the
/// threads and returns. Everything borrowed must outlive the call.
void run_until_stopped(boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor& acceptor,
                       const in_flight_requests& in_flight, lifecycle_options options);

}  // namespace gma::http
