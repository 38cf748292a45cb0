#pragma once
/// @file The process around the server: worker threads, SIGHUP, and the graceful stop on
/// SIGTERM/SIGINT: stop accepting, let running requests finish until the drain deadline,
/// answer 503 to those still running, stop the io_context, and destroy what is still pending
/// in it while the objects it borrows still exist.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "server/http/server.hpp"

namespace gma::http {

struct lifecycle_options {
  /// Threads that run the io_context, the calling one included.
  unsigned threads = 2;
  /// How long requests being answered may take after SIGTERM before they are cancelled and
  /// answered 503; well inside Kubernetes' 30 s termination grace period.
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

/// An io_context that can destroy its pending work early. ~io_context destroys the handlers and
/// coroutine frames still waiting in it (the background loops, a request that ignored its
/// cancellation); their destructors then touch the components they borrow, which main()
/// declares after the io_context and so has already destroyed.
///
/// @par Thread safety
/// As io_context; destroy_pending_work() only once run() has returned on every thread.
class stoppable_io_context : public boost::asio::io_context {
 public:
  using boost::asio::io_context::io_context;
  /// Destroys every handler and coroutine frame still pending, as ~io_context would, while
  /// the objects they borrow still exist. The io_context cannot run again afterwards.
  void destroy_pending_work() { shutdown(); }
};

/// How long requests cancelled at the drain deadline have to write their 503 and end.
inline constexpr std::chrono::milliseconds kCancelGrace{2000};

/// Runs `ioc` on `options.threads` threads until SIGTERM or SIGINT. Then stops the listener
/// from accepting and drains it; at the drain timeout cancels its remaining requests, and
/// stops `ioc` when its connections are gone (or kCancelGrace later). Joins the threads and
/// destroys the pending work before returning. Everything borrowed must outlive the call.
void run_until_stopped(stoppable_io_context& ioc, listener& server, lifecycle_options options);

}  // namespace gma::http
