#pragma once
// Runs one coroutine to completion on a test's io_context and returns its value, rethrowing
// what it threw. The context is stopped as soon as the coroutine ends, so servers and timers
// still waiting on it (a loopback server's accept) do not keep the test running.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace gma::testing {

template <class T>
T run_awaitable(boost::asio::io_context& ioc, boost::asio::awaitable<T> work) {
  std::optional<T> value;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(work), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value.emplace(std::move(v));
    ioc.stop();
  });
  ioc.restart();
  ioc.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

}  // namespace gma::testing
