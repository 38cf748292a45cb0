#pragma once
/// @file The HTTPS listener and per-connection sessions (HTTP/1.1, keep-alive, TLS 1.2+).
/// Each connection runs as one coroutine on its own strand; requests are handed to a
/// transport-free handler.
///
/// @par Thread safety
/// async_listen runs on any executor of a multi-threaded io_context. The TLS context and
/// the handler are borrowed and must outlive every session.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/http/message.hpp"
#include "server/http/tls.hpp"

namespace gma::http {

struct server_limits {
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  /// From the first byte of a request (or the handshake, for the first request) to the end of
  /// its head, as kube-apiserver's 32 s; a client that is slower gets 408 and is closed.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(32)};
  std::chrono::milliseconds idle_timeout{
      std::chrono::seconds(120)};  ///< keep-alive wait for the next request
  std::chrono::milliseconds request_timeout{
      std::chrono::seconds(30)};  ///< reading the body, writing the reply
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024;  ///< only GETs are served
  /// Beyond this, the longest-idle connection is closed to make room for a new one, or the new
  /// one is refused when all are answering requests.
  int max_connections = 2048;
};

/// Requests being answered, for a graceful shutdown. Thread-safe.
class in_flight_requests {
 public:
  /// Counts one request for as long as it lives.
  class scope {
   public:
    explicit scope(in_flight_requests& r) noexcept : r_(r) { ++r_.count_; }
    ~scope() { --r_.count_; }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

   private:
    in_flight_requests& r_;
  };
  int count() const noexcept { return count_; }

 private:
  std::atomic<int> count_{0};
};

/// An acceptor listening on `address`:`port` with SO_REUSEADDR. Throws std::runtime_error
/// naming the address when the port cannot be bound.
boost::asio::ip::tcp::acceptor listen_on(boost::asio::io_context& ioc,
                                         const boost::asio::ip::address& address,
                                         unsigned short port);

/// Accepts connections until the acceptor is closed, spawning a session for each. Each
/// connection uses the TLS context current when it was accepted; `in_flight` counts the
/// requests being answered.
boost::asio::awaitable<void> async_listen(boost::asio::ip::tcp::acceptor& acceptor,
                                          const reloading_server_context& tls,
                                          http::request_handler& handler,
                                          in_flight_requests& in_flight, server_limits limits);

}  // namespace gma::http
