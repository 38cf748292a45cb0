#include "server/core/supervisor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>

#include "server/core/log.hpp"

namespace gma::core {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

supervisor::supervisor(supervisor_options options) : options_(options) {}

void supervisor::spawn(const net::any_io_executor& executor, std::string name,
                       loop_factory make_loop) {
  {
    std::lock_guard lock(mutex_);
    loops_[name];
  }
  net::co_spawn(executor, async_supervise(std::move(name), std::move(make_loop)), net::detached);
}

void supervisor::set_running(const std::string& name) {
  std::lock_guard lock(mutex_);
  loops_[name].running = true;
}

void supervisor::set_down(const std::string& name, std::string why) {
  std::lock_guard lock(mutex_);
  auto& loop = loops_[name];
  loop.running = false;
  ++loop.restarts;
  loop.last_error = std::move(why);
}

net::awaitable<void> supervisor::async_supervise(std::string name, loop_factory make_loop) {
  net::steady_timer timer(co_await net::this_coro::executor);
  auto backoff = options_.first_backoff;
  while (true) {
    set_running(name);
    const auto started = clock::now();
    std::string why = "it ended";
    // The loop's own exceptions end here, never in the io_context: this catch is the one
    // place a background failure is turned into a log line, a restart and a failing check.
    try {
      co_await make_loop();
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "an unknown exception";
    }
    if (clock::now() - started >= options_.healthy_after) backoff = options_.first_backoff;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) co_return;
    }
    set_down(name, why);
    log::error("background loop " + name + " stopped: " + why + "; restarting in " +
               std::to_string(backoff.count()) + " ms");
    timer.expires_after(backoff);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

std::vector<health_check> supervisor::readiness_checks() const {
  std::lock_guard lock(mutex_);
  std::vector<health_check> checks;
  for (const auto& [name, loop] : loops_)
    checks.push_back(
        {"loop-" + name, loop.running,
         loop.running ? "" : "the loop stopped (" + loop.last_error + ") and is restarting"});
  return checks;
}

void supervisor::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
}

int supervisor::restarts(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = loops_.find(name);
  return it == loops_.end() ? 0 : it->second.restarts;
}

}  // namespace gma::core
