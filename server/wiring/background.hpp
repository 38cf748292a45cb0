#pragma once
/// @file Starting the long-running loops (discovery, watches, reloads) of the components.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "server/core/log.hpp"

namespace gma::wiring {

/// How often files and the authentication ConfigMap are checked for changes.
inline constexpr std::chrono::seconds kReloadInterval{5};

/// Runs `loop` on `executor`; if it ever ends with an exception, the error is logged with
/// `name`. Every loop of the process is started through here.
template <class Executor>
void spawn_background(const Executor& executor, std::string name,
                      boost::asio::awaitable<void> loop) {
  boost::asio::co_spawn(executor, std::move(loop), [name = std::move(name)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      core::log::error("background task " + name + " failed: " + ex.what());
    }
  });
}

}  // namespace gma::wiring
