#pragma once
/// @file The HTTPS listener and per-connection sessions (HTTP/1.1, keep-alive, TLS 1.2+).
/// Each connection runs as one coroutine on its own strand; requests are handed to a
/// transport-free handler.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <memory>

#include "server/http/connections.hpp"
#include "server/http/message.hpp"
#include "server/http/session.hpp"
#include "server/http/tls.hpp"

namespace gma::http {

/// The HTTPS listener and its sessions. Stopping takes two steps, as Beast's
/// advanced_server_flex_awaitable does: stop_accepting() closes the acceptor on its own strand
/// and drains the connections (idle ones close, busy ones finish their request), then
/// cancel_requests() at the drain deadline cancels what still runs, whose clients get a 503
/// Status. Only when open_connections() is 0 may what the sessions borrow be destroyed.
///
/// @par Thread safety
/// Every member may be called from any thread. The TLS context and the handler are borrowed
/// and must outlive every session.
class listener {
 public:
  /// Listens on `address`:`port` with SO_REUSEADDR. Throws std::runtime_error naming the
  /// address when the port cannot be bound (at start-up only).
  listener(boost::asio::io_context& ioc, const boost::asio::ip::address& address,
           unsigned short port, const reloading_server_context& tls, http::request_handler& handler,
           server_limits limits);

  /// Accepts connections until stop_accepting(), spawning a session for each; each uses the
  /// TLS context current when it was accepted. Runs on the listener's own strand.
  boost::asio::awaitable<void> async_run();
  /// The strand async_run() must be spawned on.
  boost::asio::any_io_executor executor() const { return strand_; }

  void stop_accepting();
  void cancel_requests();
  /// Connections whose session has not ended yet.
  int open_connections() const;

 private:
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;  // used on strand_ only
  const reloading_server_context& tls_;
  http::request_handler& handler_;
  const server_limits limits_;
  /// Open connections, so that a flood of clients cannot exhaust file descriptors or memory,
  /// idle ones make room for new ones, and the drain reaches every session.
  const std::shared_ptr<connection_table> connections_;
};

}  // namespace gma::http
