#include "adapters/http_client/http_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <optional>

#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

namespace gma::adapters::http_client {

namespace beast = boost::beast;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

/// One keep-alive connection, plain or TLS.
class connection {
 public:
  explicit connection(net::any_io_executor ex) : tcp_(ex) {}

  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : tcp_; }
  bool is_tls() const { return tls_ != nullptr; }
  beast::ssl_stream<beast::tcp_stream>& tls() { return *tls_; }
  beast::tcp_stream& plain() { return tcp_; }
  beast::flat_buffer& buffer() { return buffer_; }

  void make_tls(ssl::context& ctx) {
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(tcp_), ctx);
  }

 private:
  beast::tcp_stream tcp_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
};

namespace {

template <class Stream>
net::awaitable<error_code> write_request(Stream& stream, bhttp::request<bhttp::string_body>& req) {
  auto [ec, n] = co_await bhttp::async_write(stream, req, use_tuple);
  (void)n;
  co_return ec;
}

template <class Stream>
net::awaitable<error_code> read_head(Stream& stream, beast::flat_buffer& buffer,
                                     bhttp::response_parser<bhttp::buffer_body>& parser) {
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  (void)n;
  co_return ec;
}

template <class Stream>
net::awaitable<error_code> read_some(Stream& stream, beast::flat_buffer& buffer,
                                     bhttp::response_parser<bhttp::buffer_body>& parser) {
  auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, use_tuple);
  (void)n;
  co_return ec == bhttp::error::need_buffer ? error_code{} : ec;
}

}  // namespace

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

result<endpoint> endpoint::parse(std::string_view url) {
  endpoint ep;
  std::string_view rest;
  if (url.starts_with("https://")) {
    ep.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return errc::bad_request;
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ep.base_path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  if (authority.empty() || authority.find('@') != std::string_view::npos) return errc::bad_request;
  if (authority.front() == '[') {  // [::1]:9090
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return errc::bad_request;
    ep.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() != ':') return errc::bad_request;
    ep.port = authority.empty() ? "" : std::string(authority.substr(1));
  } else {
    const auto colon = authority.find(':');
    ep.host = std::string(authority.substr(0, colon));
    ep.port = colon == std::string_view::npos ? "" : std::string(authority.substr(colon + 1));
  }
  if (ep.port.empty()) ep.port = ep.tls ? "443" : "80";
  if (ep.host.empty() || ep.port.find_first_not_of("0123456789") != std::string::npos)
    return errc::bad_request;
  return ep;
}

http_client::http_client(net::any_io_executor executor, options opts)
    : executor_(std::move(executor)), opts_(std::move(opts)) {
  if (opts_.target.tls && !opts_.tls_context)
    throw std::invalid_argument("http_client: an https endpoint needs a TLS context");
  if (!opts_.tokens && !opts_.bearer_token_file.empty())
    opts_.tokens = std::make_shared<file_token_source>(opts_.bearer_token_file);
}

http_client::~http_client() = default;

std::unique_ptr<connection> http_client::take_idle() {
  std::lock_guard lock(mutex_);
  if (idle_.empty()) return nullptr;
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

std::string endpoint::host_header() const {
  const std::string name = host.find(':') == std::string::npos ? host : "[" + host + "]";
  // RFC 9110 7.2: the port is part of Host unless it is the scheme's default. Name-based
  // proxies route on it and AWS SigV4 signs it.
  return port == (tls ? "443" : "80") ? name : name + ":" + port;
}

bhttp::request<bhttp::string_body> http_client::new_request(outgoing_request& request,
                                                            bool keep_alive) {
  bhttp::request<bhttp::string_body> req{request.method, opts_.target.base_path + request.target,
                                         11};
  req.set(bhttp::field::host, opts_.target.host_header());
  req.set(bhttp::field::user_agent, "gpu-metrics-adapter");
  req.set(bhttp::field::accept, request.accept);
  add_headers(req);
  if (!request.content_type.empty()) req.set(bhttp::field::content_type, request.content_type);
  req.body() = std::move(request.body);
  req.keep_alive(keep_alive);
  req.prepare_payload();
  return req;
}

void http_client::add_headers(bhttp::request<bhttp::string_body>& req) {
  for (const auto& [name, value] : opts_.headers) req.set(name, value);
}

std::string http_client::authorize(bhttp::request<bhttp::string_body>& req) {
  if (!opts_.tokens) return {};
  auto current = opts_.tokens->current_token();
  if (!current.token.empty()) req.set(bhttp::field::authorization, "Bearer " + current.token);
  return current.token.empty() ? current.why_none : std::string();
}

bearer_token file_token_source::current_token() {
  std::lock_guard lock(mutex_);
  const auto now = clock::now();
  if (token_.empty() || now - read_at_ > std::chrono::minutes(1)) {
    std::string token = core::read_text_file(path_).value_or("");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
      token.pop_back();
    if (token.empty()) {
      core::log::warning("cannot read a token from " + path_ + "; using the last one");
    } else {
      token_ = std::move(token);
    }
    read_at_ = now;
  }
  return {token_, {}};
}

void http_client::give_back(std::unique_ptr<connection> c) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < opts_.max_idle_connections) idle_.push_back(std::move(c));
}

net::awaitable<result<std::unique_ptr<connection>>> http_client::async_connect(
    clock::time_point deadline, std::string& why) {
  const std::string where = opts_.target.host + ":" + opts_.target.port;
  auto c = std::make_unique<connection>(executor_);
  tcp::resolver resolver(executor_);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(opts_.target.host, opts_.target.port, use_tuple);
  if (rec) {
    why = "cannot resolve " + opts_.target.host + ": " + rec.message();
    co_return errc::backend_unavailable;
  }
  c->plain().expires_at(deadline);
  auto [cec, ep] = co_await c->plain().async_connect(endpoints, use_tuple);
  (void)ep;
  if (cec) {
    why = cec == beast::error::timeout ? "no connection to " + where + " before the deadline"
                                       : "cannot connect to " + where + ": " + cec.message();
    co_return errc::backend_unavailable;
  }
  if (opts_.target.tls) {
    c->make_tls(*opts_.tls_context);
    auto& tls = c->tls();
    // SNI and certificate host-name verification, as Go's TLS client does.
    if (!SSL_set_tlsext_host_name(tls.native_handle(), opts_.target.host.c_str())) {
      why = "cannot set the TLS server name " + opts_.target.host;
      co_return errc::protocol_error;
    }
    tls.set_verify_callback(ssl::host_name_verification(opts_.target.host));
    c->tcp().expires_at(deadline);
    auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) {
      why = hec == beast::error::timeout
                ? "TLS handshake with " + where + " timed out"
                : "TLS handshake with " + where + " failed: " + hec.message();
      co_return errc::backend_unavailable;
    }
  }
  co_return std::move(c);
}

net::awaitable<result<unsigned>> http_client::async_exchange(
    bhttp::request<bhttp::string_body>& req, clock::time_point deadline,
    clock::duration idle_timeout, const body_handler& handler, bool watch) {
  // Each wait ends at the deadline or a quiet `idle_timeout`, whichever comes first.
  const auto expire = [&](connection& c) {
    c.tcp().expires_at(std::min(deadline, clock::now() + idle_timeout));
  };
  const std::string where = opts_.target.host + ":" + opts_.target.port;
  // Says why the exchange failed: to the caller when it listens, else in the log (TLS failures
  // as warnings, as before; the rest at --v=2).
  const auto failed = [&](error_code code, const std::string& why) {
    if (handler.on_failure) {
      handler.on_failure(why);
    } else if (why.starts_with("TLS handshake")) {
      core::log::warning(why);  // a configuration problem, not an outage: as before
    } else {
      core::log::verbose(2, why);
    }
    return code;
  };
  // What a read or write error means, in words.
  const auto io_failure = [&](const error_code& ec, const char* doing) {
    if (ec == beast::error::timeout)
      return failed(errc::backend_unavailable, "no answer from " + where + " before the deadline");
    if (ec == bhttp::error::partial_message || ec == net::error::eof)
      return failed(errc::backend_unavailable, where + " closed the connection " + doing);
    // Beast's own errors: what came is not HTTP we can read (an end of stream before any
    // response included, as before).
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category())
      return failed(errc::protocol_error,
                    where + " sent no readable HTTP answer (" + ec.message() + ")");
    return failed(errc::backend_unavailable,
                  "the connection to " + where + " failed " + doing + ": " + ec.message());
  };
  // Without the token it needs the request does not go out unauthenticated: it fails at once.
  if (auto why = authorize(req); !why.empty()) co_return failed(errc::backend_unavailable, why);
  // Signed last, over the final headers and body; unsigned requests are never sent.
  if (opts_.signer) {
    if (auto why = opts_.signer->sign(req); !why.empty())
      co_return failed(errc::backend_unavailable, why);
  }
  // A pooled connection may have been closed by the server while idle; such a failure before
  // any response byte is retried once on a fresh connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<connection> c = attempt == 0 && !watch ? take_idle() : nullptr;
    const bool reused = c != nullptr;
    if (!c) {
      std::string why;
      auto connected = co_await async_connect(std::min(deadline, clock::now() + idle_timeout), why);
      if (!connected) co_return failed(connected.error(), why);
      c = std::move(*connected);
    }
    expire(*c);
    // Plain if/else: GCC 12 miscompiles co_await inside a conditional expression.
    error_code ec;
    if (c->is_tls()) {
      ec = co_await write_request(c->tls(), req);
    } else {
      ec = co_await write_request(c->plain(), req);
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);  // the handler decides what it keeps
    if (!ec) {
      expire(*c);
      if (c->is_tls()) {
        ec = co_await read_head(c->tls(), c->buffer(), parser);
      } else {
        ec = co_await read_head(c->plain(), c->buffer(), parser);
      }
    }
    if (ec) {
      if (reused && !parser.got_some() && ec != beast::error::timeout && clock::now() < deadline)
        continue;
      // A server that closes in the middle of its answer went away: unavailable, not malformed.
      co_return io_failure(ec, "before answering");
    }
    const unsigned status = parser.get().result_int();
    const std::string content_type(parser.get()[bhttp::field::content_type]);
    if (!handler.on_head(response_head{status, content_type})) co_return status;
    char piece[16384];
    while (!parser.is_done()) {
      parser.get().body().data = piece;
      parser.get().body().size = sizeof piece;
      expire(*c);
      if (c->is_tls()) {
        ec = co_await read_some(c->tls(), c->buffer(), parser);
      } else {
        ec = co_await read_some(c->plain(), c->buffer(), parser);
      }
      const std::size_t got = sizeof piece - parser.get().body().size;
      if (got > 0 && !handler.on_piece(std::string_view(piece, got))) co_return status;
      // A watch may end by the server closing: the body it sent is whole.
      if (watch && (ec == bhttp::error::end_of_stream || ec == net::error::eof)) co_return status;
      if (ec) co_return io_failure(ec, "in the middle of its answer");
    }
    if (!watch && parser.keep_alive()) give_back(std::move(c));
    co_return status;
  }
  co_return failed(errc::backend_unavailable, "no answer from " + where);
}

net::awaitable<result<unsigned>> http_client::async_request_streamed(outgoing_request request,
                                                                     clock::duration timeout,
                                                                     body_handler handler) {
  auto req = new_request(request, true);
  co_return co_await async_exchange(req, clock::now() + timeout, timeout, handler, false);
}

net::awaitable<result<unsigned>> http_client::async_watch(outgoing_request request,
                                                          clock::duration idle_timeout,
                                                          body_handler handler) {
  auto req = new_request(request, false);
  co_return co_await async_exchange(req, clock::time_point::max(), idle_timeout, handler, true);
}

net::awaitable<result<response>> http_client::async_request(bhttp::verb method, std::string target,
                                                            std::string body,
                                                            std::string content_type,
                                                            clock::duration timeout) {
  response out;
  bool too_large = false;
  body_handler collect{[&](const response_head& head) {
                         out.status = head.status;
                         out.content_type = head.content_type;
                         return true;
                       },
                       [&](std::string_view piece) {
                         too_large = out.body.size() + piece.size() > opts_.max_body_bytes;
                         if (!too_large) out.body.append(piece);
                         return !too_large;
                       },
                       // Whole-body callers (the Kubernetes reviews and ConfigMap) get only an
                       // error code: the reason is logged here, with the request's URL, at the
                       // default level.
                       [&](const std::string& why) {
                         core::log::warning(std::string(bhttp::to_string(method)) + " " +
                                            opts_.target.url() + target + " failed: " + why);
                       }};
  outgoing_request request{method, target, std::move(body), std::move(content_type)};
  auto req = new_request(request, true);
  auto status = co_await async_exchange(req, clock::now() + timeout, timeout, collect, false);
  if (!status) co_return status.error();
  if (too_large) co_return errc::protocol_error;
  co_return out;
}

net::awaitable<result<response>> transport::async_get(std::string target, clock::duration timeout) {
  // Named locals: GCC 12 destroys temporaries in a co_await expression twice.
  std::string no_body;
  std::string no_type;
  co_return co_await async_request(bhttp::verb::get, std::move(target), std::move(no_body),
                                   std::move(no_type), timeout);
}

}  // namespace gma::adapters::http_client
