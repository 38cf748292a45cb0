#include "server/http/lifecycle.hpp"

#include <sys/resource.h>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "server/core/log.hpp"

namespace gma::http {
namespace {

namespace net = boost::asio;
using std::chrono::steady_clock;

/// Re-arms itself after every SIGHUP until the set is cancelled.
void on_every_hangup(net::signal_set& hangups, const std::function<void()>& on_hangup) {
  hangups.async_wait([&hangups, &on_hangup](const boost::system::error_code& ec, int) {
    if (ec) return;
    if (on_hangup) on_hangup();
    on_every_hangup(hangups, on_hangup);
  });
}

/// The drain after SIGTERM, polled every 50 ms: waits for the listener's connections to end,
/// cancels their requests at the drain deadline, and stops the io_context when none is left
/// or the grace after the deadline is over. Lives on run_until_stopped's stack.
class drain {
 public:
  drain(net::io_context& ioc, listener& server, std::chrono::milliseconds timeout)
      : ioc_(ioc), server_(server), timer_(ioc), timeout_(timeout) {}

  /// The listener has stopped accepting: the drain timeout starts now.
  void begin() {
    deadline_ = steady_clock::now() + timeout_;
    last_call_ = deadline_ + kCancelGrace;
    poll();
  }

 private:
  void poll() {
    const int open = server_.open_connections();
    const auto now = steady_clock::now();
    if (open == 0) {
      core::log::info("every connection is closed; stopping");
      ioc_.stop();
      return;
    }
    if (now >= deadline_ && !cancelled_) {
      core::log::warning(std::to_string(open) +
                         " connections still open at the drain deadline; cancelling their "
                         "requests with 503");
      server_.cancel_requests();
      cancelled_ = true;
    }
    if (now >= last_call_) {
      core::log::warning(std::to_string(open) +
                         " connections did not end after cancelling; "
                         "stopping anyway");
      ioc_.stop();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(50));
    timer_.async_wait([this](const boost::system::error_code&) { poll(); });
  }

  net::io_context& ioc_;
  listener& server_;
  net::steady_timer timer_;
  const std::chrono::milliseconds timeout_;
  steady_clock::time_point deadline_;
  steady_clock::time_point last_call_;
  bool cancelled_ = false;
};

}  // namespace

std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    const auto before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      core::log::info("raised the open-file limit from " + std::to_string(before) + " to " +
                      std::to_string(limit.rlim_cur));
    } else {
      core::log::warning("could not raise the open-file limit from " + std::to_string(before) +
                         ": " + std::strerror(errno));
      limit.rlim_cur = before;
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(limit.rlim_cur);
}

int connection_budget(int requested, std::uint64_t open_file_limit) {
  const std::uint64_t room = open_file_limit > 2 * kReservedDescriptors
                                 ? open_file_limit - kReservedDescriptors
                                 : std::max<std::uint64_t>(open_file_limit / 2, 1);
  if (static_cast<std::uint64_t>(requested) <= room) return requested;
  core::log::warning("--max-open-connections=" + std::to_string(requested) +
                     " is more than the open-file limit of " + std::to_string(open_file_limit) +
                     " allows; serving at most " + std::to_string(room) +
                     " connections at once (raise the container's nofile limit for more)");
  return static_cast<int>(room);
}

void run_until_stopped(stoppable_io_context& ioc, listener& server, lifecycle_options options) {
  net::signal_set hangups(ioc, SIGHUP);
  on_every_hangup(hangups, options.on_hangup);

  net::signal_set stops(ioc, SIGINT, SIGTERM);
  drain draining(ioc, server, options.drain_timeout);
  stops.async_wait([&](const boost::system::error_code&, int signal) {
    core::log::info("received signal " + std::to_string(signal) +
                    ", shutting down: draining connections for up to " +
                    std::to_string(options.drain_timeout.count()) + " ms");
    if (options.on_stop) options.on_stop();
    boost::system::error_code ignored;
    hangups.cancel(ignored);
    server.stop_accepting();
    draining.begin();
    // A second signal does not wait for the drain.
    stops.async_wait([&ioc](const boost::system::error_code& ec, int) {
      if (ec) return;
      core::log::warning("received a second stop signal; stopping without waiting");
      ioc.stop();
    });
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < options.threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  // The background loops and anything else still waiting end here, before main() destroys
  // the components they use.
  ioc.destroy_pending_work();
}

}  // namespace gma::http
