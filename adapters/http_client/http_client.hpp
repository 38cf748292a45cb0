#pragma once
/// @file A small HTTP/1.1 client over Boost.Beast for talking to Prometheus and the Kubernetes
/// API: plain or TLS, keep-alive connections reused from a pool, and a deadline that bounds
/// every request from connect to the last body byte.
///
/// @par Thread safety
/// An http_client may be used by any number of coroutines at once, on any executors: each
/// request takes a connection from the pool (under a mutex) or opens one, and uses it alone.
/// The client must outlive every request it serves.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "server/core/error.hpp"

namespace gma::adapters::http_client {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;

/// Where requests go, parsed from a URL such as "https://prometheus.monitoring.svc:9090/prom".
struct endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  ///< without a trailing '/'; request targets are appended to it

  /// errc::bad_request for anything but http(s)://host[:port][/path].
  static result<endpoint> parse(std::string_view url);

  /// The Host header: the host (IPv6 in brackets) and the port unless it is the default.
  std::string host_header() const;
};

struct options {
  endpoint target;
  /// Used when target.tls; verification settings are the caller's.
  std::shared_ptr<ssl::context> tls_context;
  /// Sent with every request, e.g. {"Authorization", "Bearer ..."}.
  std::vector<std::pair<std::string, std::string>> headers;
  /// A file holding a bearer token, re-read at most once a minute (as client-go does), so
  /// rotated service-account tokens keep working. Empty: none.
  std::string bearer_token_file;
  std::size_t max_idle_connections = 16;
  std::size_t max_body_bytes = 64 * 1024 * 1024;
};

struct response {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

/// Percent-encodes everything but RFC 3986 unreserved characters, for query strings and
/// application/x-www-form-urlencoded bodies.
std::string url_encode(std::string_view s);

/// One request, one whole response: the part of http_client that the Prometheus API client and
/// the Kubernetes review clients use, as an interface so that their tests can answer without
/// sockets. http_client is the implementation every production caller gets.
///
/// @par Thread safety
/// Implementations must allow concurrent requests from any executors.
class transport {
 public:
  virtual ~transport() = default;

  /// Sends one request and reads the whole response. `target` is appended to the base path.
  /// errc::backend_unavailable when the server cannot be reached or the deadline passes,
  /// errc::protocol_error for malformed or oversized responses. Any HTTP status is a result.
  virtual net::awaitable<result<response>> async_request(
      bhttp::verb method, std::string target, std::string body, std::string content_type,
      std::chrono::steady_clock::duration timeout) = 0;

  /// async_request for a GET, which has no body.
  net::awaitable<result<response>> async_get(std::string target,
                                             std::chrono::steady_clock::duration timeout);

  /// Where the requests go (for log lines and health reasons).
  virtual const endpoint& target() const noexcept = 0;
};

class connection;

class http_client final : public transport {
 public:
  http_client(net::any_io_executor executor, options opts);
  ~http_client() override;
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// See transport::async_request.
  net::awaitable<result<response>> async_request(
      bhttp::verb method, std::string target, std::string body, std::string content_type,
      std::chrono::steady_clock::duration timeout) override;

  /// GETs `target` and hands the body to `on_data` piece by piece as it arrives (a Kubernetes
  /// watch). Returns the final HTTP status once the body ends, the server closes, or `on_data`
  /// returns false. `idle_timeout` bounds the wait for each piece. The connection is not reused.
  net::awaitable<result<unsigned>> async_stream(std::string target,
                                                std::function<bool(std::string_view)> on_data,
                                                std::chrono::steady_clock::duration idle_timeout);

  const endpoint& target() const noexcept override { return opts_.target; }

 private:
  net::awaitable<result<std::unique_ptr<connection>>> async_connect(
      std::chrono::steady_clock::time_point deadline);
  std::unique_ptr<connection> take_idle();
  void give_back(std::unique_ptr<connection> c);
  /// A request for `target` under the base path with Host, User-Agent, Accept, the configured
  /// headers and the current bearer token.
  bhttp::request<bhttp::string_body> new_request(bhttp::verb method, const std::string& target);
  void add_headers(bhttp::request<bhttp::string_body>& req);

  net::any_io_executor executor_;
  options opts_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<connection>> idle_;       // guarded by mutex_
  std::string token_;                                   // guarded by mutex_
  std::chrono::steady_clock::time_point token_read_{};  // guarded by mutex_
};

}  // namespace gma::adapters::http_client
