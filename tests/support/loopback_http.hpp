#pragma once
// A one-shot HTTP server on loopback for unit tests of the clients: it records what it receives
// and answers with fixed bytes.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>

namespace gma::testing {

/// Accepts one connection, records the request head in `head` and answers `reply`; with
/// `hold`, keeps the connection open afterwards until the io_context stops.
inline boost::asio::awaitable<void> serve_once(boost::asio::ip::tcp::acceptor& acceptor,
                                               std::string& head, std::string reply,
                                               bool hold = false) {
  namespace net = boost::asio;
  auto socket = co_await acceptor.async_accept(net::use_awaitable);
  std::string buffer;
  const auto n = co_await net::async_read_until(socket, net::dynamic_buffer(buffer), "\r\n\r\n",
                                                net::use_awaitable);
  head = buffer.substr(0, n);
  co_await net::async_write(socket, net::buffer(reply), net::use_awaitable);
  if (hold)
    co_await net::async_read_until(socket, net::dynamic_buffer(buffer), "never",
                                   net::use_awaitable);
}

}  // namespace gma::testing
