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
  /// The URL, for log lines: "https://prometheus.monitoring.svc:9090/prom".
  std::string url() const { return (tls ? "https://" : "http://") + host_header() + base_path; }
};

/// Authenticates a request just before it is sent, over its final headers and body (AWS
/// SigV4), with material that may need keeping fresh (temporary credentials).
///
/// @par Thread safety
/// sign() is called from any number of requests at once; the refresh runs as one loop.
class request_signer {
 public:
  virtual ~request_signer() = default;
  /// Signs `request` in place. Empty on success; otherwise why it cannot be signed, and the
  /// request is not sent (errc::backend_unavailable, the reason to body_handler::on_failure).
  virtual std::string sign(bhttp::request<bhttp::string_body>& request) const = 0;
  /// True when async_keep_fresh() must run (under the supervisor) for sign() to succeed.
  virtual bool refreshes() const = 0;
  /// True once the first fetch of the signing material has ended, well or not: until then a
  /// request fails only for want of it (start-up waits for this).
  virtual bool first_fetch_done() const = 0;
  /// Keeps the signing material fresh until cancelled; throws when a refresh fails.
  virtual net::awaitable<void> async_keep_fresh() = 0;
  /// Fetches the signing material once (one-shot commands); false when that failed (logged).
  virtual net::awaitable<bool> async_fetch_once() = 0;
};

/// The bearer token to send now, or why there is none.
struct bearer_token {
  std::string token;     ///< empty: none
  std::string why_none;  ///< set when `token` is empty and requests must not go out without one
};

/// Where each request's `Authorization: Bearer` comes from: a token file re-read now and then,
/// or a cloud token refreshed by a loop of its own. Asked once per request, so it must answer
/// at once, never waiting for the network.
///
/// @par Thread safety
/// Implementations must allow concurrent calls from any thread.
class token_source {
 public:
  virtual ~token_source() = default;
  /// The token for the request about to go out. An empty token with `why_none` set fails the
  /// request as errc::backend_unavailable with that reason; an empty one without sends none.
  virtual bearer_token current_token() = 0;
};

/// A file holding a bearer token, re-read at most once a minute (as client-go does), so that
/// rotated service-account tokens keep working; the last good token stays while the file
/// cannot be read.
class file_token_source final : public token_source {
 public:
  explicit file_token_source(std::string path) : path_(std::move(path)) {}
  bearer_token current_token() override;

 private:
  const std::string path_;
  std::mutex mutex_;
  std::string token_;                                // guarded by mutex_
  std::chrono::steady_clock::time_point read_at_{};  // guarded by mutex_
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
  /// Where the bearer token comes from instead of bearer_token_file (a cloud's workload
  /// identity). Null: bearer_token_file, if any.
  std::shared_ptr<token_source> tokens;
  /// Signs every request last, after the headers above (--prometheus-sigv4-region); null: none.
  std::shared_ptr<request_signer> signer;
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

/// A request to send: `target` is appended to the endpoint's base path.
struct outgoing_request {
  bhttp::verb method = bhttp::verb::get;
  std::string target;
  std::string body;
  std::string content_type;  ///< of the body; empty: none
  std::string accept = "application/json";
};

/// The start of an answer, handed over before any byte of its body.
struct response_head {
  unsigned status = 0;
  std::string_view content_type;
};

/// What a streamed request does with an answer as it arrives, so that a body of any size is
/// read in memory that follows what the caller keeps of it. The handler is called on the
/// requesting coroutine, never concurrently.
struct body_handler {
  /// Called once with the status line and headers; false stops reading.
  std::function<bool(const response_head&)> on_head;
  /// Called with each piece of the body in order; false stops reading (the connection is then
  /// closed rather than reused).
  std::function<bool(std::string_view piece)> on_piece;
  /// Optional: called once, before the request returns an error, with why in words that name
  /// the server ("cannot connect to prometheus:9090: Connection refused"), so that callers can
  /// log the transport's reason where the error code only says "unavailable".
  std::function<void(const std::string& reason)> on_failure;
};

/// One request, one response: the part of http_client that the Prometheus API client, the pod
/// cache and the Kubernetes review clients use, as an interface so that their tests can answer
/// without sockets. http_client is the implementation every production caller gets.
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

  /// Sends one request and hands its answer to `handler` piece by piece, within `timeout` from
  /// connect to the last byte. Returns the HTTP status once the body has ended or the handler
  /// stopped reading; errors as async_request (no size limit applies: the handler keeps what
  /// it needs).
  virtual net::awaitable<result<unsigned>> async_request_streamed(
      outgoing_request request, std::chrono::steady_clock::duration timeout,
      body_handler handler) = 0;

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

  /// See transport::async_request; bodies over options::max_body_bytes are protocol errors.
  net::awaitable<result<response>> async_request(
      bhttp::verb method, std::string target, std::string body, std::string content_type,
      std::chrono::steady_clock::duration timeout) override;

  /// See transport::async_request_streamed.
  net::awaitable<result<unsigned>> async_request_streamed(
      outgoing_request request, std::chrono::steady_clock::duration timeout,
      body_handler handler) override;

  /// A request whose answer has no end in sight (a Kubernetes watch): as
  /// async_request_streamed, but `idle_timeout` bounds only the wait for each piece. The
  /// connection is not reused.
  net::awaitable<result<unsigned>> async_watch(outgoing_request request,
                                               std::chrono::steady_clock::duration idle_timeout,
                                               body_handler handler);

  const endpoint& target() const noexcept override { return opts_.target; }
  /// options::signer (null: none).
  const std::shared_ptr<request_signer>& signer() const noexcept { return opts_.signer; }

 private:
  /// A new connection (TLS handshake done); on failure `why` says what went wrong, naming the
  /// server.
  net::awaitable<result<std::unique_ptr<connection>>> async_connect(
      std::chrono::steady_clock::time_point deadline, std::string& why);
  std::unique_ptr<connection> take_idle();
  void give_back(std::unique_ptr<connection> c);
  /// `request` under the base path with Host, User-Agent, Accept and the configured headers.
  bhttp::request<bhttp::string_body> new_request(outgoing_request& request, bool keep_alive);
  /// Sends `req` and reads the answer into `handler`: on a pooled connection (retried once on a
  /// fresh one when the pooled one turns out closed) unless it is a watch. Every wait ends by
  /// `deadline` and within `idle_timeout` of the previous piece.
  net::awaitable<result<unsigned>> async_exchange(bhttp::request<bhttp::string_body>& req,
                                                  std::chrono::steady_clock::time_point deadline,
                                                  std::chrono::steady_clock::duration idle_timeout,
                                                  const body_handler& handler, bool watch);
  void add_headers(bhttp::request<bhttp::string_body>& req);
  /// Sets the current bearer token on `req`; the reason when there is none and there must be.
  std::string authorize(bhttp::request<bhttp::string_body>& req);

  net::any_io_executor executor_;
  options opts_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<connection>> idle_;  // guarded by mutex_
};

}  // namespace gma::adapters::http_client
