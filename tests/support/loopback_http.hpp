#pragma once
// HTTP servers on loopback for unit tests of the clients: they record what they receive and
// answer with fixed bytes, so a test controls the wire exactly (chunking, truncation, resets).
//
// Thread safety: none; run everything on one io_context driven by the test's thread, and
// inspect the record once the client's coroutine has ended.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

/// A server that plays a script: the n-th connection it accepts answers its requests with the
/// steps of script[n], in order. Every request is parsed (head and body) and recorded per
/// connection. Connections beyond the script are closed at once. The server runs until the
/// io_context stops; it never throws.
class scripted_server {
 public:
  /// What to do after writing a step's reply.
  enum class then {
    read_next,  ///< wait for the next request on this connection (keep-alive)
    close,      ///< close the connection (a FIN)
    reset,      ///< abort the connection (an RST: SO_LINGER 0, then close)
    hang,       ///< leave it open and never answer again
  };
  struct step {
    std::string reply;  ///< raw bytes written back; may be empty
    then after = then::read_next;
  };
  using request = boost::beast::http::request<boost::beast::http::string_body>;

  scripted_server(boost::asio::io_context& ioc, std::vector<std::vector<step>> script)
      : acceptor_(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        script_(std::move(script)),
        received_(script_.size()) {
    boost::asio::co_spawn(ioc, accept_loop(), boost::asio::detached);
  }

  /// "http://127.0.0.1:<port>" followed by `path`.
  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }

  /// How many connections were accepted.
  std::size_t accepted() const { return accepted_; }
  /// The requests read on the n-th connection.
  const std::vector<request>& received(std::size_t connection) const {
    return received_.at(connection);
  }

  /// A complete HTTP/1.1 reply with a Content-Length.
  static std::string reply(unsigned status, const std::string& body,
                           const std::string& extra_headers = "") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
           extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

 private:
  boost::asio::awaitable<void> accept_loop() {
    namespace net = boost::asio;
    const auto token = net::as_tuple(net::use_awaitable);
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(token);
      if (ec) co_return;
      const std::size_t index = accepted_++;
      if (index >= script_.size()) continue;  // the socket closes here
      net::co_spawn(acceptor_.get_executor(), serve(std::move(socket), index), net::detached);
    }
  }

  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket, std::size_t index) {
    namespace net = boost::asio;
    namespace bhttp = boost::beast::http;
    const auto token = net::as_tuple(net::use_awaitable);
    boost::beast::flat_buffer buffer;
    for (const step& s : script_[index]) {
      request req;
      auto [rec, rn] = co_await bhttp::async_read(socket, buffer, req, token);
      (void)rn;
      if (rec) co_return;
      received_[index].push_back(std::move(req));
      if (!s.reply.empty()) {
        auto [wec, wn] = co_await net::async_write(socket, net::buffer(s.reply), token);
        (void)wn;
        if (wec) co_return;
      }
      boost::system::error_code ignored;
      switch (s.after) {
        case then::read_next:
          break;
        case then::close:
          socket.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
          socket.close(ignored);
          co_return;
        case then::reset:
          socket.set_option(net::socket_base::linger(true, 0), ignored);
          socket.close(ignored);
          co_return;
        case then::hang: {
          // Until the client gives up and closes, or the io_context stops.
          char byte;
          auto [hec, hn] = co_await socket.async_read_some(net::buffer(&byte, 1), token);
          (void)hec;
          (void)hn;
          co_return;
        }
      }
    }
  }

  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::vector<step>> script_;
  std::vector<std::vector<request>> received_;
  std::size_t accepted_ = 0;
};

}  // namespace gma::testing
