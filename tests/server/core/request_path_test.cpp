#include "server/core/request_path.hpp"

#include <gtest/gtest.h>

namespace gma::core {
namespace {

TEST(RequestPath, SegmentsAreDecodedOneByOne) {
  const auto p = parse_request_path(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/"
      "m?labelSelector=a%3Db%2Cc+in+%28x%29");
  ASSERT_TRUE(p.valid);
  EXPECT_EQ(p.segments, (std::vector<std::string>{"apis", "custom.metrics.k8s.io", "v1beta2",
                                                  "namespaces", "ml", "pods", "*", "m"}));
  EXPECT_EQ(p.path, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/*/m");
  EXPECT_EQ(p.query.at("labelSelector"), "a=b,c in (x)");
}

TEST(RequestPath, AnEncodedSlashNamesNothing) {
  for (const char* target : {"/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fsecrets/pods/x/m",
                             "/apis%2fcustom.metrics.k8s.io", "/%2F"}) {
    SCOPED_TRACE(target);
    EXPECT_FALSE(parse_request_path(target).valid);
  }
}

TEST(RequestPath, MalformedTargetsNameNothing) {
  for (const char* target : {"", "apis", "/apis/%zz", "/apis/%2", "/apis?a=%zz", "*"}) {
    SCOPED_TRACE(target);
    EXPECT_FALSE(parse_request_path(target).valid);
  }
}

TEST(RequestPath, TrailingSlashAndFirstQueryValue) {
  const auto p = parse_request_path("/apis/?a=1&a=2&&b");
  ASSERT_TRUE(p.valid);
  EXPECT_EQ(p.segments, std::vector<std::string>{"apis"});
  EXPECT_EQ(p.path, "/apis/");
  EXPECT_EQ(p.query.at("a"), "1");
  EXPECT_EQ(p.query.at("b"), "");
  EXPECT_EQ(parse_request_path("/").path, "/");
}

}  // namespace
}  // namespace gma::core
