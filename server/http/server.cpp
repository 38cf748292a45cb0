#include "server/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <array>

#include "server/core/log.hpp"

namespace gma::http {

using ssl_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

/// TLS over TCP: Beast's stream timeouts close the socket; the head deadline only cancels.
template <>
struct stream_transport<ssl_stream> {
  static void expires_after(ssl_stream& s, std::chrono::milliseconds d) {
    boost::beast::get_lowest_layer(s).expires_after(d);
  }
  static void expires_never(ssl_stream& s) { boost::beast::get_lowest_layer(s).expires_never(); }
  static void cancel_reads(ssl_stream& s) {
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(s).socket().cancel(ignored);
  }
};

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
// How long accepting pauses after a failed accept (EMFILE), doubling up to the maximum.
constexpr std::chrono::milliseconds kMinAcceptBackoff{100};
constexpr std::chrono::milliseconds kMaxAcceptBackoff{2000};
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// How long and how much a refused client may go on sending before its connection is closed.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 4 * 1024 * 1024;

/// The client's certificate chain as DER, leaf first; nullptr when it sent none.
std::shared_ptr<const client_certificate_chain> peer_chain(SSL* ssl) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return nullptr;
  std::vector<std::string> chain;
  const auto append = [&](X509* cert) {
    unsigned char* der = nullptr;
    const int n = i2d_X509(cert, &der);
    if (n > 0) chain.emplace_back(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
  };
  append(leaf);
  // On the server side the peer chain excludes the leaf (SSL_get_peer_cert_chain(3)).
  if (STACK_OF(X509)* rest = SSL_get_peer_cert_chain(ssl))
    for (int i = 0; i < sk_X509_num(rest); ++i) append(sk_X509_value(rest, i));
  return std::make_shared<const client_certificate_chain>(std::move(chain));
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

/// Stops sending (FIN after the refusal), then reads and discards what the client still sends
/// until it closes, for at most kLingerTime and kLingerBytes, and closes: Go's
/// closeWriteAndWait. Closing at once with unread bytes would send a reset instead.
net::awaitable<void> async_linger(beast::tcp_stream& tcp) {
  boost::system::error_code ignored;
  tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
  tcp.expires_after(kLingerTime);
  std::array<char, 16 * 1024> sink;
  for (std::size_t total = 0; total < kLingerBytes;) {
    auto [ec, n] = co_await tcp.async_read_some(net::buffer(sink), use_tuple);
    if (ec) break;
    total += n;
  }
}

net::awaitable<void> async_run_session(std::shared_ptr<net::ssl::context> tls, tcp::socket socket,
                                       std::shared_ptr<connection_table::entry> slot,
                                       http::request_handler& handler, server_limits limits) {
  ssl_stream stream(std::move(socket), *tls);
  // Until the session ends, the table may close this socket to make room while it is idle,
  // or to drain.
  const attached_socket attached(*slot, beast::get_lowest_layer(stream).socket());
  beast::get_lowest_layer(stream).expires_after(limits.handshake_timeout);
  auto [hec] = co_await stream.async_handshake(net::ssl::stream_base::server, use_tuple);
  if (hec) {
    core::log::verbose(2, [e = hec] { return "TLS handshake failed: " + e.message(); });
    co_return;
  }
  auto client_chain = peer_chain(stream.native_handle());
  const bool refused =
      co_await async_serve_requests(stream, *slot, handler, limits, std::move(client_chain));
  if (refused) {
    // The client may still be sending what was refused: no TLS shutdown, whose reads would
    // fail on that data, but a lingering close of the TCP connection.
    co_await async_linger(beast::get_lowest_layer(stream));
    co_return;
  }
  // A cancelled request's client has its 503; the drain deadline leaves no time to wait for
  // its close_notify.
  beast::get_lowest_layer(stream).expires_after(
      slot->request_cancelled() ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000));
  co_await stream.async_shutdown(use_tuple);
}

/// True for accept errors that mean this process (EMFILE) or the system (ENFILE) has no file
/// descriptor left: retrying at once would spin.
bool out_of_descriptors(const beast::error_code& ec) {
  return ec == net::error::no_descriptors ||
         ec == boost::system::errc::too_many_files_open_in_system;
}

}  // namespace

listener::listener(net::io_context& ioc, const net::ip::address& address, unsigned short port,
                   const reloading_server_context& tls, http::request_handler& handler,
                   server_limits limits)
    : strand_(net::make_strand(ioc)),
      acceptor_(strand_),
      tls_(tls),
      handler_(handler),
      limits_(limits),
      connections_(connection_table::create(limits.max_connections)) {
  const tcp::endpoint endpoint(address, port);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + address.to_string() + ":" +
                             std::to_string(port) + ": " + ec.message());
}

void listener::stop_accepting() {
  // The acceptor is used on its strand only; closing it there ends async_run().
  net::dispatch(strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  connections_->drain();
}

void listener::cancel_requests() { connections_->cancel_requests(); }

int listener::open_connections() const { return connections_->size(); }

net::awaitable<void> listener::async_run() {
  core::log::rate_limited refused_log(std::chrono::seconds(10));
  core::log::rate_limited failed_log(std::chrono::seconds(10));
  net::steady_timer pause(strand_);
  auto backoff = kMinAcceptBackoff;
  while (acceptor_.is_open()) {
    // Each connection gets its own strand, so its coroutine never runs on two threads at once.
    auto session_strand = net::make_strand(strand_.get_inner_executor());
    auto [ec, socket] = co_await acceptor_.async_accept(session_strand, use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
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
    auto slot = connections_->admit(executor);
    if (!slot) {
      if (const auto refused = refused_log.count())
        core::log::warning(
            "closed " + std::to_string(*refused) +
            " new connections since the last report: " + std::to_string(limits_.max_connections) +
            " connections are open and answering requests, or the server is "
            "stopping");
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::co_spawn(
        executor,
        async_run_session(tls_.current(), std::move(socket), std::move(slot), handler_, limits_),
        [](std::exception_ptr e) {
          if (e) core::log::error("session ended with an error: " + session_detail::what_of(e));
        });
  }
}

}  // namespace gma::http
