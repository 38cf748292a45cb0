#include "server/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <cctype>

#include "server/core/log.hpp"
#include "server/core/memory.hpp"
#include "server/core/strings.hpp"
#include "server/http/connections.hpp"

namespace gma::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
// How long accepting pauses after a failed accept (EMFILE), doubling up to the maximum.
constexpr std::chrono::milliseconds kMinAcceptBackoff{100};
constexpr std::chrono::milliseconds kMaxAcceptBackoff{2000};
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

bool is_expected_close(const beast::error_code& ec) {
  // A peer that closes without close_notify (stream_truncated) or between requests
  // (end_of_stream) is normal for HTTP/1.1 clients; neither is worth a log line.
  return ec == bhttp::error::end_of_stream || ec == net::ssl::error::stream_truncated ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == beast::error::timeout || ec == net::error::operation_aborted;
}

/// The client's certificate chain as DER, leaf first; nullptr when it sent none.
std::shared_ptr<const std::vector<std::string>> peer_chain(SSL* ssl) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return nullptr;
  auto chain = std::make_shared<std::vector<std::string>>();
  const auto append = [&](X509* cert) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    if (n > 0) chain->emplace_back(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
  };
  append(leaf);
  // On the server side the peer chain excludes the leaf (SSL_get_peer_cert_chain(3)).
  if (STACK_OF(X509)* rest = SSL_get_peer_cert_chain(ssl))
    for (int i = 0; i < sk_X509_num(rest); ++i) append(sk_X509_value(rest, i));
  return chain;
}

using ssl_stream = beast::ssl_stream<beast::tcp_stream>;

/// What the head deadline's timer and the read share; both run on the connection's strand.
struct head_deadline {
  bool head_done = false;
  bool expired = false;
};

/// A short reply that ends the connection (400, 408).
net::awaitable<void> async_refuse(ssl_stream& stream, bhttp::status status, const char* text) {
  bhttp::response<bhttp::string_body> res{status, 11};
  res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
  res.body() = text;
  res.keep_alive(false);
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  co_await bhttp::async_write(stream, res, use_tuple);
}

/// Reads into `buffer` until the head of a request is in `parser`, within `limit` of now.
/// Beast's own stream timeout closes the socket, which would leave no way to answer 408; this
/// deadline only cancels the read. `timed_out` says the deadline passed.
net::awaitable<beast::error_code> async_read_head(ssl_stream& stream, beast::flat_buffer& buffer,
                                                  bhttp::request_parser<bhttp::string_body>& parser,
                                                  std::chrono::milliseconds limit,
                                                  bool& timed_out) {
  beast::get_lowest_layer(stream).expires_never();
  net::steady_timer deadline(stream.get_executor());
  deadline.expires_after(limit);
  // Shared with the timer's handler, which may already be queued when the head arrives: it
  // must then do nothing, and it must not touch this frame, which may be gone by then.
  auto state = std::make_shared<head_deadline>();
  deadline.async_wait([&stream, state](const beast::error_code& ec) {
    if (ec || state->head_done) return;
    state->expired = true;
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().cancel(ignored);
  });
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  (void)n;
  state->head_done = true;
  deadline.cancel();
  timed_out = state->expired;
  co_return ec;
}

/// Waits up to `idle` for the first byte of the next request on a kept-alive connection.
net::awaitable<bool> async_wait_for_request(ssl_stream& stream, beast::flat_buffer& buffer,
                                            std::chrono::milliseconds idle) {
  if (buffer.size() > 0) co_return true;
  beast::get_lowest_layer(stream).expires_after(idle);
  auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
  buffer.commit(n);
  if (ec && !is_expected_close(ec)) core::log::verbose(2, "waiting for a request: " + ec.message());
  co_return !ec;
}

/// Tells the connection table where the session's socket is while the session lives.
class attached_socket {
 public:
  attached_socket(connection_table::entry& slot, tcp::socket& socket) : slot_(slot) {
    slot_.attach(&socket);
  }
  ~attached_socket() { slot_.attach(nullptr); }
  attached_socket(const attached_socket&) = delete;
  attached_socket& operator=(const attached_socket&) = delete;

 private:
  connection_table::entry& slot_;
};

net::awaitable<void> async_run_session(std::shared_ptr<net::ssl::context> tls, tcp::socket socket,
                                       std::shared_ptr<connection_table::entry> slot,
                                       http::request_handler& handler,
                                       in_flight_requests& in_flight, server_limits limits) {
  ssl_stream stream(std::move(socket), *tls);
  // Until the session ends, the table may close this socket to make room while it is idle.
  const attached_socket attached(*slot, beast::get_lowest_layer(stream).socket());
  beast::get_lowest_layer(stream).expires_after(limits.handshake_timeout);
  auto [hec] = co_await stream.async_handshake(net::ssl::stream_base::server, use_tuple);
  if (hec) {
    core::log::verbose(2, "TLS handshake failed: " + hec.message());
    co_return;
  }
  const auto client_chain = peer_chain(stream.native_handle());
  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    // Declared first, so that after a large reply (60k objects are tens of MB of JSON) the
    // freed heap goes back to the system once the request, the reply and its body are gone.
    core::trim_heap_after trim;
    // The first request's head is due within the header timeout of the handshake; later ones
    // may keep the connection idle first.
    if (!first) {
      const bool more = co_await async_wait_for_request(stream, buffer, limits.idle_timeout);
      if (!more) break;
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    bool head_timed_out = false;
    auto rec =
        co_await async_read_head(stream, buffer, parser, limits.header_timeout, head_timed_out);
    if (!rec) {
      beast::get_lowest_layer(stream).expires_after(limits.request_timeout);
      auto [bec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      (void)n;
      rec = bec;
    }
    if (rec) {
      if (head_timed_out) {
        // A client that started a request hears why it is closed; a silent one is just closed.
        if (!parser.got_some() && buffer.size() == 0) break;
        core::log::verbose(2, "a client did not send a request head within " +
                                  std::to_string(limits.header_timeout.count()) + " ms; 408");
        co_await async_refuse(stream, bhttp::status::request_timeout, "408 Request Timeout");
        break;  // a TLS shutdown, not a reset, so that the client reads the 408
      }
      if (!is_expected_close(rec)) core::log::verbose(2, "reading a request: " + rec.message());
      if (rec == bhttp::error::header_limit || rec == bhttp::error::body_limit ||
          rec.category() == bhttp::make_error_code(bhttp::error::bad_method).category())
        co_await async_refuse(stream, bhttp::status::bad_request, "400 Bad Request");
      break;
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
    http::reply out;
    slot->set_idle(false);
    {
      const in_flight_requests::scope counted(in_flight);
      out = co_await handler.async_handle(std::move(request));
    }
    trim.bytes = out.body.size();
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(out.status), req.version()};
    res.set(bhttp::field::content_type, out.content_type);
    res.set(bhttp::field::cache_control, "no-cache, private");
    res.set("X-Content-Type-Options", "nosniff");
    res.keep_alive(req.keep_alive());
    res.body() = req.method() == bhttp::verb::head ? std::string() : std::move(out.body);
    res.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(limits.request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
    (void)wn;
    if (wec) {
      core::log::verbose(2, "writing a response: " + wec.message());
      co_return;
    }
    if (!res.keep_alive()) break;
    slot->set_idle(true);
  }
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(use_tuple);
}

/// True for accept errors that mean this process (EMFILE) or the system (ENFILE) has no file
/// descriptor left: retrying at once would spin.
bool out_of_descriptors(const beast::error_code& ec) {
  return ec == net::error::no_descriptors ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace

tcp::acceptor listen_on(net::io_context& ioc, const net::ip::address& address,
                        unsigned short port) {
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(address, port);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + address.to_string() + ":" +
                             std::to_string(port) + ": " + ec.message());
  return acceptor;
}

net::awaitable<void> async_listen(tcp::acceptor& acceptor, const reloading_server_context& tls,
                                  http::request_handler& handler, in_flight_requests& in_flight,
                                  server_limits limits) {
  // Open connections, so that a flood of clients cannot exhaust file descriptors or memory,
  // and idle ones make room for new ones.
  auto connections = connection_table::create(limits.max_connections);
  core::log::rate_limited refused_log(std::chrono::seconds(10));
  core::log::rate_limited failed_log(std::chrono::seconds(10));
  net::steady_timer pause(acceptor.get_executor());
  auto backoff = kMinAcceptBackoff;
  while (acceptor.is_open()) {
    // Each connection gets its own strand, so its coroutine never runs on two threads at once.
    auto strand = net::make_strand(acceptor.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(strand, use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      // An accept that fails at once fails again at once: wait, longer each time, and say so
      // once per interval rather than on every try.
      if (const auto failures = failed_log.count())
        core::log::warning(
            "accepting connections failed " + std::to_string(*failures) +
            " times since the last report (" + ec.message() + ")" +
            (out_of_descriptors(ec) ? "; out of file descriptors, backing off" : ""));
      pause.expires_after(backoff);
      co_await pause.async_wait(use_tuple);
      backoff = std::min(backoff * 2, kMaxAcceptBackoff);
      continue;
    }
    backoff = kMinAcceptBackoff;
    auto executor = socket.get_executor();
    auto slot = connections->admit(executor);
    if (!slot) {
      if (const auto refused = refused_log.count())
        core::log::warning(
            "closed " + std::to_string(*refused) +
            " new connections since the last report: " + std::to_string(limits.max_connections) +
            " connections are open and answering requests");
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::co_spawn(executor,
                  async_run_session(tls.current(), std::move(socket), std::move(slot), handler,
                                    in_flight, limits),
                  [](std::exception_ptr e) {
                    if (!e) return;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                      core::log::error(std::string("session ended with an error: ") + ex.what());
                    }
                  });
  }
}

}  // namespace gma::http
