// The client against loopback servers written here (tests/support/loopback_http.hpp), which
// record what they receive and answer with exact bytes: statuses, chunking, limits, broken
// peers, the deadline and the connection pool are all seen from the wire.
#include "adapters/http_client/http_client.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/loopback_http.hpp"
#include "tests/support/run_awaitable.hpp"

namespace gma::adapters::http_client {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using testing::run_awaitable;
using server = testing::scripted_server;
using then = server::then;
using std::chrono::seconds;

std::string host_header_of(const std::string& head) {
  const auto at = head.find("\r\nHost: ");
  if (at == std::string::npos) return "";
  const auto start = at + 8;
  return head.substr(start, head.find("\r\n", start) - start);
}

options options_for(const std::string& url) {
  options opts;
  opts.target = *endpoint::parse(url);
  return opts;
}

/// GETs `target` `count` times in a row through one client (so the pool is shared).
net::awaitable<std::vector<result<response>>> get_times(http_client& client, int count,
                                                        std::chrono::milliseconds timeout) {
  std::vector<result<response>> out;
  for (int i = 0; i < count; ++i) {
    std::string target = "/r" + std::to_string(i);
    out.push_back(co_await client.async_get(std::move(target), timeout));
  }
  co_return out;
}

result<response> get_once(net::io_context& ioc, http_client& client,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return std::move(run_awaitable(ioc, get_times(client, 1, timeout)).front());
}

TEST(HttpClient, HostHeaderCarriesANonDefaultPort) {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, {net::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(acceptor.local_endpoint().port());
  std::string head;
  net::co_spawn(
      ioc, testing::serve_once(acceptor, head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
      net::detached);
  options opts;
  opts.target = *endpoint::parse("http://127.0.0.1:" + port + "/prom");
  http_client client(ioc.get_executor(), opts);
  auto answer = net::co_spawn(
      ioc, client.async_get("/api/v1/query?query=up", std::chrono::seconds(5)), net::use_future);
  ioc.run();
  const auto res = answer.get();
  ASSERT_TRUE(res.has_value()) << res.error().message();
  EXPECT_EQ(res->status, 200u);
  EXPECT_EQ(res->body, "ok");
  EXPECT_TRUE(head.starts_with("GET /prom/api/v1/query?query=up HTTP/1.1\r\n")) << head;
  EXPECT_EQ(host_header_of(head), "127.0.0.1:" + port);
}

TEST(EndpointHostHeader, PortOnlyWhenNotTheSchemesDefault) {
  EXPECT_EQ(endpoint::parse("http://prometheus:9090")->host_header(), "prometheus:9090");
  EXPECT_EQ(endpoint::parse("http://prometheus")->host_header(), "prometheus");
  EXPECT_EQ(endpoint::parse("http://prometheus:80")->host_header(), "prometheus");
  EXPECT_EQ(endpoint::parse("https://aps.amazonaws.com")->host_header(), "aps.amazonaws.com");
  EXPECT_EQ(endpoint::parse("https://thanos:443/x")->host_header(), "thanos");
  EXPECT_EQ(endpoint::parse("https://thanos:10902")->host_header(), "thanos:10902");
  EXPECT_EQ(endpoint::parse("http://[::1]:9090")->host_header(), "[::1]:9090");
  EXPECT_EQ(endpoint::parse("http://[::1]")->host_header(), "[::1]");
}

// Any HTTP status is a result for the caller to judge, with its body and content type.
TEST(HttpClient, EveryStatusIsAResultWithItsBody) {
  for (const unsigned status : {200u, 204u, 400u, 401u, 404u, 422u, 500u, 503u}) {
    SCOPED_TRACE(status);
    net::io_context ioc;
    const std::string body = status == 204 ? "" : "{\"status\":" + std::to_string(status) + "}";
    server srv(ioc, {{{server::reply(status, body)}}});
    http_client client(ioc.get_executor(), options_for(srv.url()));
    const auto res = get_once(ioc, client);
    ASSERT_TRUE(res.has_value()) << res.error().message();
    EXPECT_EQ(res->status, status);
    EXPECT_EQ(res->body, body);
    EXPECT_EQ(res->content_type, "application/json");
  }
}

// What goes on the wire: the base path, Host, User-Agent, Accept, the configured headers, the
// bearer token read from its file (without the newline editors add), and a POST's form body.
TEST(HttpClient, RequestCarriesPathHeadersTokenAndBody) {
  const auto token_file = std::filesystem::temp_directory_path() /
                          ("gma_http_client_token_" + std::to_string(::getpid()));
  std::ofstream(token_file) << "s3cret\n";
  net::io_context ioc;
  server srv(ioc, {{{server::reply(200, "{}")}}});
  options opts = options_for(srv.url("/prom/"));
  opts.headers = {{"X-Scope-OrgID", "tenant-a"}};
  opts.bearer_token_file = token_file.string();
  http_client client(ioc.get_executor(), opts);
  const auto res = run_awaitable(
      ioc, client.async_request(bhttp::verb::post, "/api/v1/query", "query=up&timeout=5000ms",
                                "application/x-www-form-urlencoded", seconds(10)));
  std::filesystem::remove(token_file);
  ASSERT_TRUE(res.has_value()) << res.error().message();
  ASSERT_EQ(srv.received(0).size(), 1u);
  const auto& req = srv.received(0)[0];
  EXPECT_EQ(req.method(), bhttp::verb::post);
  EXPECT_EQ(req.target(), "/prom/api/v1/query");
  EXPECT_EQ(req[bhttp::field::host], srv.url().substr(7));
  EXPECT_EQ(req[bhttp::field::user_agent], "gpu-metrics-adapter");
  EXPECT_EQ(req[bhttp::field::accept], "application/json");
  EXPECT_EQ(req["X-Scope-OrgID"], "tenant-a");
  EXPECT_EQ(req[bhttp::field::authorization], "Bearer s3cret");
  EXPECT_EQ(req[bhttp::field::content_type], "application/x-www-form-urlencoded");
  EXPECT_EQ(req.body(), "query=up&timeout=5000ms");
  EXPECT_TRUE(req.keep_alive());
}

TEST(HttpClient, ChunkedReplyIsReassembled) {
  net::io_context ioc;
  server srv(ioc, {{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\n{\"a\"\r\n6\r\n:[1,2]\r\n1\r\n}\r\n0\r\n\r\n"}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = get_once(ioc, client);
  ASSERT_TRUE(res.has_value()) << res.error().message();
  EXPECT_EQ(res->body, "{\"a\":[1,2]}");
}

// max_body_bytes protects the adapter's memory: a longer body is refused whether its length is
// announced or only discovered chunk by chunk.
TEST(HttpClient, ReplyLargerThanTheLimitIsAProtocolError) {
  const std::string announced = server::reply(200, "0123456789");
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
  for (const auto& reply : {announced, chunked}) {
    SCOPED_TRACE(reply);
    net::io_context ioc;
    server srv(ioc, {{{reply}}});
    options opts = options_for(srv.url());
    opts.max_body_bytes = 8;
    http_client client(ioc.get_executor(), opts);
    const auto res = get_once(ioc, client);
    ASSERT_FALSE(res.has_value());
    EXPECT_EQ(res.error(), errc::protocol_error);
  }
}

TEST(HttpClient, MalformedReplyIsAProtocolError) {
  net::io_context ioc;
  server srv(ioc, {{{"SMTP ready\r\n\r\n", then::close}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = get_once(ioc, client);
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::protocol_error);
}

// A server that goes away in the middle of its answer is unavailable, not malformed.
TEST(HttpClient, TruncatedReplyIsUnavailable) {
  net::io_context ioc;
  server srv(ioc, {{{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":", then::close}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = get_once(ioc, client);
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::backend_unavailable);
  EXPECT_EQ(srv.accepted(), 1u);  // a fresh connection is not retried
}

TEST(HttpClient, PeerThatResetsIsUnavailable) {
  net::io_context ioc;
  server srv(ioc, {{{"", then::reset}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = get_once(ioc, client);
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::backend_unavailable);
  EXPECT_EQ(srv.received(0).size(), 1u);
}

TEST(HttpClient, RefusedConnectionIsUnavailable) {
  net::io_context ioc;
  std::string url;
  {
    tcp::acceptor closed(ioc, {net::ip::make_address("127.0.0.1"), 0});
    url = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port());
  }
  http_client client(ioc.get_executor(), options_for(url));
  const auto res = get_once(ioc, client);
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::backend_unavailable);
}

// A server that reads the request and never answers: the deadline ends the wait, neither
// before it passes nor long after.
TEST(HttpClient, DeadlineBoundsASilentServer) {
  net::io_context ioc;
  server srv(ioc, {{{"", then::hang}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto timeout = std::chrono::milliseconds(300);
  const auto started = std::chrono::steady_clock::now();
  const auto res = get_once(ioc, client, timeout);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::backend_unavailable);
  EXPECT_GE(elapsed, timeout);
  EXPECT_LT(elapsed, seconds(20));
}

// The deadline covers the body too: headers that arrive in time do not extend it.
TEST(HttpClient, DeadlineCoversASlowBody) {
  net::io_context ioc;
  server srv(ioc, {{{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", then::hang}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = get_once(ioc, client, std::chrono::milliseconds(300));
  ASSERT_FALSE(res.has_value());
  EXPECT_EQ(res.error(), errc::backend_unavailable);
}

TEST(HttpClient, KeepAliveReusesThePooledConnection) {
  net::io_context ioc;
  server srv(ioc, {{{server::reply(200, "first")}, {server::reply(200, "second")}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = run_awaitable(ioc, get_times(client, 2, std::chrono::seconds(10)));
  ASSERT_TRUE(res[0].has_value()) << res[0].error().message();
  ASSERT_TRUE(res[1].has_value()) << res[1].error().message();
  EXPECT_EQ(res[0]->body, "first");
  EXPECT_EQ(res[1]->body, "second");
  EXPECT_EQ(srv.accepted(), 1u);
  ASSERT_EQ(srv.received(0).size(), 2u);
  EXPECT_EQ(srv.received(0)[1].target(), "/r1");
}

// "Connection: close" means the server will not read another request: not pooled.
TEST(HttpClient, ConnectionCloseIsNotPooled) {
  net::io_context ioc;
  server srv(ioc, {{{server::reply(200, "first", "Connection: close\r\n"), then::close}},
                   {{server::reply(200, "second")}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = run_awaitable(ioc, get_times(client, 2, std::chrono::seconds(10)));
  ASSERT_TRUE(res[1].has_value()) << res[1].error().message();
  EXPECT_EQ(res[1]->body, "second");
  EXPECT_EQ(srv.accepted(), 2u);
  EXPECT_EQ(srv.received(0).size(), 1u);
}

// A pooled connection that died while idle fails before any reply byte: the request is sent
// again once on a fresh connection, and the caller never sees the failure. The server either
// closed it after its answer (a FIN), or resets it when the next request arrives (an RST; not
// right after the answer, which could discard the answer itself).
TEST(HttpClient, StalePooledConnectionIsRetriedOnAFreshOne) {
  const std::vector<std::vector<server::step>> closed = {
      {{server::reply(200, "first"), then::close}}, {{server::reply(200, "fresh")}}};
  const std::vector<std::vector<server::step>> reset = {
      {{server::reply(200, "first")}, {"", then::reset}}, {{server::reply(200, "fresh")}}};
  for (const auto& script : {closed, reset}) {
    SCOPED_TRACE(script[0].size() == 1 ? "closed" : "reset");
    net::io_context ioc;
    server srv(ioc, script);
    http_client client(ioc.get_executor(), options_for(srv.url()));
    const auto res = run_awaitable(ioc, get_times(client, 2, std::chrono::seconds(10)));
    ASSERT_TRUE(res[0].has_value()) << res[0].error().message();
    ASSERT_TRUE(res[1].has_value()) << res[1].error().message();
    EXPECT_EQ(res[1]->body, "fresh");
    EXPECT_EQ(srv.accepted(), 2u);
    ASSERT_EQ(srv.received(1).size(), 1u);
    EXPECT_EQ(srv.received(1)[0].target(), "/r1");
  }
}

// The retry is for a connection that died idle, not for one that broke mid-answer: a reused
// connection that truncates its reply is an error, with no second request sent.
TEST(HttpClient, PooledConnectionThatBreaksMidReplyIsNotRetried) {
  net::io_context ioc;
  server srv(ioc, {{{server::reply(200, "first")},
                    {"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npartial", then::close}},
                   {{server::reply(200, "unexpected")}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = run_awaitable(ioc, get_times(client, 2, std::chrono::seconds(10)));
  ASSERT_TRUE(res[0].has_value()) << res[0].error().message();
  ASSERT_FALSE(res[1].has_value());
  EXPECT_EQ(res[1].error(), errc::backend_unavailable);
  EXPECT_EQ(srv.accepted(), 1u);
}

/// Streams `count` GETs of /s<i> through one client; `stop_after` pieces of the first answer
/// are read before its handler stops (0: read it whole). Returns each answer's status and the
/// body its handler saw.
net::awaitable<std::vector<std::pair<result<unsigned>, std::string>>> stream_times(
    http_client& client, int count, std::size_t stop_after) {
  std::vector<std::pair<result<unsigned>, std::string>> out;
  for (int i = 0; i < count; ++i) {
    std::string body;
    std::size_t pieces = 0;
    body_handler handler{[](const response_head&) { return true; },
                         [&, i](std::string_view piece) {
                           body.append(piece);
                           return i > 0 || stop_after == 0 || ++pieces < stop_after;
                         }};
    outgoing_request request{bhttp::verb::get, "/s" + std::to_string(i)};
    auto status =
        co_await client.async_request_streamed(std::move(request), seconds(10), std::move(handler));
    out.emplace_back(std::move(status), std::move(body));
  }
  co_return out;
}

// A streamed answer read to its end leaves the connection in the pool, as a whole one does;
// the body arrives in pieces, however large, with no size limit.
/// One streamed GET; what on_failure said (empty when it was not called).
std::string failure_reason(net::io_context& ioc, http_client& client,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::string why;
  body_handler handler{[](const response_head&) { return true; },
                       [](std::string_view) { return true; },
                       [&](const std::string& reason) { why = reason; }};
  outgoing_request request{bhttp::verb::get, "/r", {}, {}};
  const auto res = run_awaitable(
      ioc, client.async_request_streamed(std::move(request), timeout, std::move(handler)));
  EXPECT_FALSE(res.has_value());
  return why;
}

// Callers log the transport's reason at --v=0, naming the server, where the error code only
// says "unavailable".
TEST(HttpClientStreamed, AFailureIsExplainedInWordsThatNameTheServer) {
  net::io_context ioc;
  std::string port;
  {
    tcp::acceptor closed(ioc, {net::ip::make_address("127.0.0.1"), 0});
    port = std::to_string(closed.local_endpoint().port());
  }
  http_client refused(ioc.get_executor(), options_for("http://127.0.0.1:" + port));
  EXPECT_EQ(failure_reason(ioc, refused),
            "cannot connect to 127.0.0.1:" + port + ": Connection refused");

  http_client unresolvable(ioc.get_executor(), options_for("http://no-such-host.invalid:9090"));
  EXPECT_TRUE(
      failure_reason(ioc, unresolvable).starts_with("cannot resolve no-such-host.invalid: "));

  server silent(ioc, {{{"", then::hang}}});
  http_client slow(ioc.get_executor(), options_for(silent.url()));
  const std::string silent_where = silent.url().substr(7);  // after "http://"
  EXPECT_EQ(failure_reason(ioc, slow, std::chrono::milliseconds(200)),
            "no answer from " + silent_where + " before the deadline");

  server truncating(
      ioc, {{{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":", then::close}}});
  http_client cut(ioc.get_executor(), options_for(truncating.url()));
  EXPECT_EQ(failure_reason(ioc, cut),
            truncating.url().substr(7) + " closed the connection in the middle of its answer");
}

TEST(HttpClientStreamed, AnswerReadWholeIsPooledAndUncapped) {
  net::io_context ioc;
  const std::string big(100000, 'x');
  server srv(ioc, {{{server::reply(200, big)}, {server::reply(201, "second")}}});
  auto opts = options_for(srv.url());
  opts.max_body_bytes = 1000;  // the cap of whole-body requests, which streaming does not have
  http_client client(ioc.get_executor(), opts);
  const auto res = run_awaitable(ioc, stream_times(client, 2, 0));
  ASSERT_TRUE(res[0].first.has_value()) << res[0].first.error().message();
  EXPECT_EQ(*res[0].first, 200u);
  EXPECT_EQ(res[0].second, big);
  ASSERT_TRUE(res[1].first.has_value());
  EXPECT_EQ(*res[1].first, 201u);
  EXPECT_EQ(res[1].second, "second");
  EXPECT_EQ(srv.accepted(), 1u);
}

// A handler that stops reading leaves the rest of the answer on the connection: it is closed,
// not pooled, and the next request opens a fresh one.
TEST(HttpClientStreamed, AHandlerThatStopsDropsTheConnection) {
  net::io_context ioc;
  const std::string big(200000, 'x');
  server srv(ioc, {{{server::reply(200, big)}}, {{server::reply(200, "fresh")}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  const auto res = run_awaitable(ioc, stream_times(client, 2, 1));
  ASSERT_TRUE(res[0].first.has_value()) << res[0].first.error().message();
  EXPECT_LT(res[0].second.size(), big.size());
  ASSERT_TRUE(res[1].first.has_value()) << res[1].first.error().message();
  EXPECT_EQ(res[1].second, "fresh");
  EXPECT_EQ(srv.accepted(), 2u);
  EXPECT_EQ(srv.received(1)[0].target(), "/s1");
}

// A Kubernetes watch whose server closes after its last event (no terminating chunk needed
// for a close-delimited body) ends with the status, the events all handed over.
TEST(HttpClientStreamed, AWatchEndsWhenTheServerCloses) {
  net::io_context ioc;
  server srv(ioc,
             {{{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\n{\"b\":2}\n",
                then::close}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  std::string seen;
  body_handler handler{[](const response_head& head) { return head.status == 200; },
                       [&](std::string_view piece) {
                         seen.append(piece);
                         return true;
                       }};
  outgoing_request request{bhttp::verb::get, "/api/v1/pods?watch=1", {}, {}, "application/json"};
  const auto status =
      run_awaitable(ioc, client.async_watch(std::move(request), seconds(5), std::move(handler)));
  ASSERT_TRUE(status.has_value()) << status.error().message();
  EXPECT_EQ(*status, 200u);
  EXPECT_EQ(seen, "{\"a\":1}\n{\"b\":2}\n");
}

// The watch's idle timeout bounds each wait for a piece, not the whole watch.
TEST(HttpClientStreamed, AQuietWatchEndsAtItsIdleTimeout) {
  net::io_context ioc;
  server srv(
      ioc,
      {{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}\r\n\r\n", then::hang}}});
  http_client client(ioc.get_executor(), options_for(srv.url()));
  std::string seen;
  body_handler handler{[](const response_head&) { return true; },
                       [&](std::string_view piece) {
                         seen.append(piece);
                         return true;
                       }};
  const auto started = std::chrono::steady_clock::now();
  const auto status =
      run_awaitable(ioc, client.async_watch(outgoing_request{bhttp::verb::get, "/w"},
                                            std::chrono::milliseconds(300), std::move(handler)));
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error(), errc::backend_unavailable);
  EXPECT_EQ(seen, "{}\r\n");
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(3));
}

}  // namespace
}  // namespace gma::adapters::http_client
