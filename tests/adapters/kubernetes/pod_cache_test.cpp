#include "adapters/kubernetes/pod_cache.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace gma::adapters::kubernetes {
namespace {

std::string event(const char* type, const char* ns, const char* name, const char* labels,
                  int version) {
  return std::string(R"({"type":")") + type + R"(","object":{"kind":"Pod","apiVersion":"v1",)" +
         R"("metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","resourceVersion":")" +
         std::to_string(version) + R"(","labels":)" + labels +
         R"(},"status":{"phase":"Running"}}})";
}

class PodCacheTest : public ::testing::Test {
 protected:
  boost::asio::io_context ioc;
  http_client::http_client client{
      ioc.get_executor(),
      http_client::options{*http_client::endpoint::parse("http://127.0.0.1:1")}};
  pod_cache cache{client};
};

TEST_F(PodCacheTest, UnavailableUntilSynced) {
  EXPECT_EQ(cache.list_pod_names("ml", {}).error(), errc::kubernetes_unavailable);
  EXPECT_FALSE(cache.readiness_checks()[0].ok);
}

TEST_F(PodCacheTest, WatchEventsAddModifyAndDelete) {
  EXPECT_TRUE(cache.apply_event(event("ADDED", "ml", "a", R"({"app":"triton"})", 2)));
  EXPECT_TRUE(cache.apply_event(event("ADDED", "ml", "b", R"({"app":"vllm"})", 3)));
  EXPECT_TRUE(cache.apply_event(event("ADDED", "other", "c", R"({"app":"triton"})", 4)));
  EXPECT_TRUE(cache.apply_event(event("MODIFIED", "ml", "b", R"({"app":"triton"})", 5)));
  EXPECT_TRUE(cache.apply_event(event("DELETED", "ml", "a", R"({"app":"triton"})", 6)));
  EXPECT_TRUE(cache.apply_event(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"7"}}})"));
  EXPECT_TRUE(cache.apply_event("not json"));
  // Events alone do not make the cache synced: only a full list does.
  EXPECT_EQ(cache.list_pod_names("ml", {}).error(), errc::kubernetes_unavailable);
}

TEST_F(PodCacheTest, ErrorEventAsksForARelist) {
  EXPECT_FALSE(cache.apply_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}})"));
}

}  // namespace
}  // namespace gma::adapters::kubernetes
