#include <gtest/gtest.h>

#include "adapters/http_client/http_client.hpp"

namespace gma::adapters::http_client {
namespace {

TEST(EndpointParse, SchemesPortsAndPaths) {
  auto e = endpoint::parse("https://prometheus.monitoring.svc:9090/prom/");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->host, "prometheus.monitoring.svc");
  EXPECT_EQ(e->port, "9090");
  EXPECT_EQ(e->base_path, "/prom");
  auto plain = endpoint::parse("http://127.0.0.1");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->port, "80");
  EXPECT_EQ(plain->base_path, "");
  auto v6 = endpoint::parse("http://[::1]:9090");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(endpoint::parse("https://localhost")->port, "443");
}

TEST(EndpointParse, RejectsWhatIsNotAnHttpUrl) {
  for (const char* bad : {"prometheus:9090", "ftp://x", "http://", "http://host:port",
                          "http://user@host", "http://[::1"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(endpoint::parse(bad).has_value());
  }
}

TEST(UrlEncode, FormSafe) {
  EXPECT_EQ(url_encode(R"(sum(x{a="b"}) by (c))"), "sum%28x%7Ba%3D%22b%22%7D%29%20by%20%28c%29");
  EXPECT_EQ(url_encode("a-b_c.d~"), "a-b_c.d~");
}

}  // namespace
}  // namespace gma::adapters::http_client
