// The client against a loopback server written here, which records what it receives.
#include "adapters/http_client/http_client.hpp"
#include "tests/support/loopback_http.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>

namespace gma::adapters::http_client {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string host_header_of(const std::string& head) {
  const auto at = head.find("\r\nHost: ");
  if (at == std::string::npos) return "";
  const auto start = at + 8;
  return head.substr(start, head.find("\r\n", start) - start);
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

}  // namespace
}  // namespace gma::adapters::http_client
