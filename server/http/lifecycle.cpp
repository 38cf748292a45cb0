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

/// Polls until no request is running or the deadline passes, then stops the io_context.
void stop_when_drained(net::io_context& ioc, net::steady_timer& timer,
                       const in_flight_requests& in_flight, steady_clock::time_point deadline) {
  if (in_flight.count() == 0 || steady_clock::now() >= deadline) {
    if (in_flight.count() != 0)
      core::log::warning(std::to_string(in_flight.count()) + " requests still running at shutdown");
    ioc.stop();
    return;
  }
  timer.expires_after(std::chrono::milliseconds(50));
  timer.async_wait([&ioc, &timer, &in_flight, deadline](const boost::system::error_code&) {
    stop_when_drained(ioc, timer, in_flight, deadline);
  });
}

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

void run_until_stopped(net::io_context& ioc, net::ip::tcp::acceptor& acceptor,
                       const in_flight_requests& in_flight, lifecycle_options options) {
  net::signal_set hangups(ioc, SIGHUP);
  on_every_hangup(hangups, options.on_hangup);

  net::signal_set stops(ioc, SIGINT, SIGTERM);
  net::steady_timer drain(ioc);
  stops.async_wait([&](const boost::system::error_code&, int signal) {
    core::log::info("received signal " + std::to_string(signal) + ", shutting down");
    if (options.on_stop) options.on_stop();
    boost::system::error_code ignored;
    acceptor.close(ignored);
    hangups.cancel(ignored);
    stop_when_drained(ioc, drain, in_flight, steady_clock::now() + options.drain_timeout);
  });

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < options.threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
}

}  // namespace gma::http
