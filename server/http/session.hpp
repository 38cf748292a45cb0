#pragma once
/// @file The request loop of one connection: read a request head within its deadline, hand the
/// request to the handler, write the reply, and keep the connection alive or end it. It runs
/// over any Beast stream whose deadlines stream_transport<Stream> knows how to set, so that the
/// TLS sessions (server.cpp) and the fuzzer (tests/fuzz/http_head_fuzz.cpp, over Beast's test
/// stream) run the same code.
///
/// @par Thread safety
/// One coroutine per connection, on the connection's strand; the handler may run concurrently
/// for other connections. The stream, slot and handler are borrowed for the call.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/core/log.hpp"
#include "server/core/memory.hpp"
#include "server/core/status.hpp"
#include "server/core/strings.hpp"
#include "server/http/connections.hpp"
#include "server/http/message.hpp"

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

/// How the request loop sets deadlines on a stream type; specialized per transport
/// (server.cpp for TLS over TCP). Each member takes the stream:
///   static void expires_after(Stream&, std::chrono::milliseconds);  // ends any operation
///   static void expires_never(Stream&);
///   static void cancel_reads(Stream&);  // the head deadline passed: cancel, do not close
template <class Stream>
struct stream_transport;

namespace session_detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

inline bool is_expected_close(const beast::error_code& ec) {
  // A peer that closes without close_notify (stream_truncated) or between requests
  // (end_of_stream) is normal for HTTP/1.1 clients; neither is worth a log line.
  return ec == bhttp::error::end_of_stream || ec == net::ssl::error::stream_truncated ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == beast::error::timeout || ec == net::error::operation_aborted;
}

/// What the head deadline's timer and the read share; both run on the connection's strand.
struct head_deadline {
  bool head_done = false;
  bool expired = false;
};

/// A short reply that ends the connection (400, 408, 431).
template <class Stream>
net::awaitable<void> async_refuse(Stream& stream, bhttp::status status, const char* text) {
  bhttp::response<bhttp::string_body> res{status, 11};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.body() = text;
  res.keep_alive(false);
  res.prepare_payload();
  stream_transport<Stream>::expires_after(stream, std::chrono::seconds(5));
  co_await bhttp::async_write(stream, res, use_tuple);
}

/// Reads into `buffer` until the head of a request is in `parser`, within `limit` of now.
/// Beast's own stream timeout closes the socket, which would leave no way to answer 408; this
/// deadline only cancels the read. `timed_out` says the deadline passed.
template <class Stream>
net::awaitable<beast::error_code> async_read_head(Stream& stream, beast::flat_buffer& buffer,
                                                  bhttp::request_parser<bhttp::string_body>& parser,
                                                  std::chrono::milliseconds limit,
                                                  bool& timed_out) {
  stream_transport<Stream>::expires_never(stream);
  net::steady_timer deadline(stream.get_executor());
  deadline.expires_after(limit);
  // Shared with the timer's handler, which may already be queued when the head arrives: it
  // must then do nothing, and it must not touch this frame, which may be gone by then.
  auto state = std::make_shared<head_deadline>();
  deadline.async_wait([&stream, state](const beast::error_code& ec) {
    if (ec || state->head_done) return;
    state->expired = true;
    stream_transport<Stream>::cancel_reads(stream);
  });
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  (void)n;
  state->head_done = true;
  deadline.cancel();
  timed_out = state->expired;
  co_return ec;
}

/// Waits up to `idle` for the first byte of the next request on a kept-alive connection.
template <class Stream>
net::awaitable<bool> async_wait_for_request(Stream& stream, beast::flat_buffer& buffer,
                                            std::chrono::milliseconds idle) {
  if (buffer.size() > 0) co_return true;
  stream_transport<Stream>::expires_after(stream, idle);
  auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
  buffer.commit(n);
  if (ec && !is_expected_close(ec))
    core::log::verbose(2, [e = ec] { return "waiting for a request: " + e.message(); });
  co_return !ec;
}

/// The reply to a read that failed: 408, 431 or 400 for a client that sent something wrong
/// or too slowly, nothing (just close) for one that went away or said nothing. True when a
/// reply was sent: the client may still be sending the request it was refused.
template <class Stream>
net::awaitable<bool> async_answer_read_error(Stream& stream, const beast::error_code& ec,
                                             bool head_timed_out, bool got_some,
                                             const server_limits& limits) {
  if (head_timed_out) {
    // A client that started a request hears why it is closed; a silent one is just closed.
    if (!got_some) co_return false;
    core::log::verbose(2, [&] {
      return "a client did not send a request head within " +
             std::to_string(limits.header_timeout.count()) + " ms; 408";
    });
    co_await async_refuse(stream, bhttp::status::request_timeout, "408 Request Timeout");
    co_return true;
  }
  if (!is_expected_close(ec))
    core::log::verbose(2, [&] { return "reading a request: " + ec.message(); });
  // Go's net/http answers an oversized head with 431, as kube-apiserver does.
  if (ec == bhttp::error::header_limit) {
    co_await async_refuse(stream, bhttp::status::request_header_fields_too_large,
                          "431 Request Header Fields Too Large");
    co_return true;
  }
  // A client that closed before or during a request (end of stream, partial message) is
  // gone; anything else the parser refused is a bad request.
  const bool parse_error =
      ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
  if (!parse_error) co_return false;
  co_await async_refuse(stream, bhttp::status::bad_request, "400 Bad Request");
  co_return true;
}

/// What an exception says, for a log line.
inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

/// Runs the handler for one request with the slot's cancellation bound to it. At the drain
/// deadline the table cancels it, and the client is told the server is shutting down instead.
inline net::awaitable<reply> async_answer(connection_table::entry& slot, request_handler& handler,
                                          request req) {
  const auto executor = co_await net::this_coro::executor;
  // Its own coroutine, so that cancelling the handler leaves this session's state alone: the
  // session still writes the 503.
  auto handling = handler.async_handle(std::move(req));
  auto token = net::bind_cancellation_slot(slot.request_slot(), use_tuple);
  slot.begin_request();
  auto [error, out] = co_await net::co_spawn(executor, std::move(handling), token);
  slot.end_request();
  // A handler that finished just as the deadline passed (its completion was queued) may still
  // lose its answer to the 503: the client retries either way.
  if (slot.request_cancelled())
    co_return status_reply(core::service_unavailable("the server is shutting down"));
  if (error) {
    // Handlers answer their own errors; this is the last line of defence for the connection.
    core::log::error("a request handler failed (" + what_of(error) + "); answering 500");
    co_return status_reply(core::internal_error("the request handler failed"));
  }
  co_return std::move(out);
}

}  // namespace session_detail

/// Serves requests on `stream` until the client closes, a deadline passes, a request asks to
/// close, or the server drains. `client_chain` is the TLS client's certificate chain (or
/// nullptr), handed to every request. The caller closes the transport afterwards. Returns
/// true when it ended by refusing a request (400, 408, 431) whose bytes may still be arriving:
/// closing at once with unread bytes would have the kernel reset the connection, which can
/// destroy the refusal before the client reads it (RFC 9112, section 9.6).
template <class Stream>
boost::asio::awaitable<bool> async_serve_requests(
    Stream& stream, connection_table::entry& slot, request_handler& handler,
    const server_limits& limits, std::shared_ptr<const client_certificate_chain> client_chain) {
  namespace bhttp = boost::beast::http;
  using namespace session_detail;
  boost::beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    // Declared first, so that after a large reply (60k objects are tens of MB of JSON) the
    // freed heap goes back to the system once the request, the reply and its body are gone.
    core::trim_heap_after trim;
    // The first request's head is due within the header timeout of the handshake; later ones
    // may keep the connection idle first.
    if (!first) {
      slot.set_between_requests(true);
      const bool more = co_await async_wait_for_request(stream, buffer, limits.idle_timeout);
      slot.set_between_requests(false);
      if (!more) co_return false;
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    bool head_timed_out = false;
    auto rec =
        co_await async_read_head(stream, buffer, parser, limits.header_timeout, head_timed_out);
    if (!rec) {
      stream_transport<Stream>::expires_after(stream, limits.request_timeout);
      auto [bec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      (void)n;
      rec = bec;
    }
    if (rec) {
      const bool got_some = parser.got_some() || buffer.size() > 0;
      co_return co_await async_answer_read_error(stream, rec, head_timed_out, got_some, limits);
    }
    const auto& req = parser.get();
    // Arguments of co_await calls are named locals, never temporaries: GCC 12 destroys
    // temporaries in a co_await expression twice.
    http::request request{
        std::string(req.method_string()), std::string(req.target()), {}, client_chain};
    for (const auto& field : req) {
      request.headers.emplace_back(core::ascii_lower(field.name_string()),
                                   std::string(field.value()));
    }
    slot.set_idle(false);
    http::reply out = co_await async_answer(slot, handler, std::move(request));
    trim.bytes = out.body.size();
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(out.status), req.version()};
    res.set(bhttp::field::content_type, out.content_type);
    res.set(bhttp::field::cache_control, "no-cache, private");
    res.set("X-Content-Type-Options", "nosniff");
    // A draining server tells the client to reconnect (to another replica) after this reply.
    res.keep_alive(req.keep_alive() && !slot.draining() && !slot.request_cancelled());
    res.body() = req.method() == bhttp::verb::head ? std::string() : std::move(out.body);
    res.prepare_payload();
    stream_transport<Stream>::expires_after(stream, limits.request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
    (void)wn;
    if (wec) {
      // A copy: clang 14 cannot capture a structured binding (P1091).
      core::log::verbose(2, [e = wec] { return "writing a response: " + e.message(); });
      co_return false;
    }
    // A drain that began while the reply was written ends the connection here.
    if (!res.keep_alive() || slot.draining()) co_return false;
    slot.set_idle(true);
  }
}

}  // namespace gma::http
