#pragma once
/// @file Every long-running loop of the process (discovery, the pod watch, the reload watches,
/// the listener) runs under one supervisor. A loop that ends or throws is logged, restarted
/// after a capped exponential back-off, and shown as a failing readiness check named after it
/// until it runs again, so a dead loop can never hide behind a green /readyz.
///
/// @par Thread safety
/// spawn() may be called from any thread; readiness_checks() from any thread while loops run.
/// The supervisor must outlive the io_context its loops run on.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "server/core/provider.hpp"

namespace gma::core {

struct supervisor_options {
  std::chrono::milliseconds first_backoff{std::chrono::seconds(1)};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(60)};
  /// A run that lasted this long resets the back-off to first_backoff.
  std::chrono::milliseconds healthy_after{std::chrono::minutes(5)};
};

class supervisor final : public readiness_source {
 public:
  /// Makes a fresh run of a loop; called again for every restart.
  using loop_factory = std::function<boost::asio::awaitable<void>()>;

  explicit supervisor(supervisor_options options = {});

  /// Starts `make_loop()` on `executor` and keeps it running. `name` names the readiness check
  /// ("loop-<name>") and the log lines.
  void spawn(const boost::asio::any_io_executor& executor, std::string name,
             loop_factory make_loop);

  /// One check per loop: ok while it runs, failing with the last error while it waits to
  /// restart.
  std::vector<health_check> readiness_checks() const override;

  /// How often the loop `name` has been restarted (the tests read it).
  int restarts(const std::string& name) const;

  /// From now on a loop that ends is not restarted (the process is stopping: the listener
  /// ends when its socket closes).
  void stop();

 private:
  struct loop_state {
    bool running = false;
    int restarts = 0;
    std::string last_error;
  };
  boost::asio::awaitable<void> async_supervise(std::string name, loop_factory make_loop);
  void set_running(const std::string& name);
  void set_down(const std::string& name, std::string why);

  const supervisor_options options_;
  mutable std::mutex mutex_;
  std::map<std::string, loop_state> loops_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
};

}  // namespace gma::core
