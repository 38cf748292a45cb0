#pragma once
/// @file The HTTPS listener and per-connection sessions (HTTP/1.1, keep-alive, TLS 1.2+).
/// Each connection runs as one coroutine on its own strand; requests are handed to a
/// transport-free handler.
///
/// @par Thread safety
/// async_listen runs on any executor of a multi-threaded io_context. The TLS context and
/// the handler are borrowed and must outlive every session.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/handlers/api_handler.hpp"
#include "server/http/tls.hpp"

namespace gma::http {

struct server_limits {
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds idle_timeout{120};     ///< keep-alive wait for the next request
  std::chrono::seconds request_timeout{30};   ///< reading a request and writing the reply
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024;     ///< only GETs are served
};

/// Accepts connections until the acceptor is closed, spawning a session for each. Each
/// connection uses the TLS context current when it was accepted.
boost::asio::awaitable<void> async_listen(boost::asio::ip::tcp::acceptor& acceptor,
                                          const reloading_server_context& tls,
                                          handlers::request_handler& handler,
                                          server_limits limits);

}  // namespace gma::http
