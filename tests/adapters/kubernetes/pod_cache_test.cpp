#include "adapters/kubernetes/pod_cache.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "tests/support/loopback_http.hpp"

#include <prometheus/registry.h>

namespace gma::adapters::kubernetes {
namespace {

using tcp = boost::asio::ip::tcp;

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
  ::prometheus::Registry registry;
  pod_cache cache{client, registry};
};

TEST_F(PodCacheTest, UnavailableUntilSynced) {
  EXPECT_EQ(cache.list_pod_names("ml", {}).error(), errc::kubernetes_unavailable);
  EXPECT_FALSE(cache.readiness_checks()[0].ok);
}

TEST(PodCacheWatch, EventsAddModifyAndDeleteAfterAList) {
  boost::asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto port = std::to_string(acceptor.local_endpoint().port());
  const std::string list =
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[)"
      R"({"metadata":{"name":"z","namespace":"ml","labels":{"app":"triton"}}}]})";
  std::string list_head, watch_head;
  // The list, then a watch that stays open and quiet: the events come from the test. A named
  // lambda: the coroutine refers to its captures, which must outlive it.
  auto serve = [&]() -> boost::asio::awaitable<void> {
    co_await testing::serve_once(acceptor, list_head,
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: " +
                                     std::to_string(list.size()) + "\r\n\r\n" + list);
    co_await testing::serve_once(acceptor, watch_head,
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true);
  };
  boost::asio::co_spawn(ioc, serve(), boost::asio::detached);
  http_client::http_client client{
      ioc.get_executor(),
      http_client::options{*http_client::endpoint::parse("http://127.0.0.1:" + port)}};
  ::prometheus::Registry registry;
  pod_cache cache{client, registry};
  boost::asio::co_spawn(ioc, cache.async_run(), boost::asio::detached);
  ioc.run_for(std::chrono::milliseconds(500));
  // Metadata only, the first list from the API server's cache, as metadata informers ask.
  ASSERT_TRUE(list_head.starts_with("GET /api/v1/pods?limit=500&resourceVersion=0 ")) << list_head;
  EXPECT_NE(list_head.find(std::string("Accept: ") + kAcceptMetadataList), std::string::npos)
      << list_head;
  ASSERT_TRUE(watch_head.starts_with("GET /api/v1/pods?watch=1")) << watch_head;
  EXPECT_NE(watch_head.find(std::string("Accept: ") + kAcceptMetadata), std::string::npos)
      << watch_head;

  EXPECT_TRUE(cache.apply_event(event("ADDED", "ml", "a", R"({"app":"triton"})", 2)));
  EXPECT_TRUE(cache.apply_event(event("ADDED", "ml", "b", R"({"app":"vllm"})", 3)));
  EXPECT_TRUE(cache.apply_event(event("ADDED", "other", "c", R"({"app":"triton"})", 4)));
  EXPECT_TRUE(cache.apply_event(event("MODIFIED", "ml", "b", R"({"app":"triton"})", 5)));
  EXPECT_TRUE(cache.apply_event(event("DELETED", "ml", "a", R"({"app":"triton"})", 6)));
  EXPECT_TRUE(cache.apply_event(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"7"}}})"));
  EXPECT_TRUE(cache.apply_event("not json"));
  EXPECT_TRUE(
      cache.apply_event(R"({"type":"ADDED","object":{"metadata":{"name":"w","namespace":5}}})"));

  const auto triton = *core::label_selector::parse("app=triton");
  EXPECT_EQ(*cache.list_pod_names("ml", triton), (std::vector<std::string>{"b", "z"}));
  EXPECT_EQ(*cache.list_pod_names("other", triton), (std::vector<std::string>{"c"}));
  EXPECT_EQ(*cache.list_pod_names("ml", *core::label_selector::parse("app=vllm")),
            std::vector<std::string>{});
  EXPECT_TRUE(cache.readiness_checks()[0].ok);
}

TEST(PodCacheDecode, MetadataAndFullListsGiveTheSamePods) {
  const std::string metadata =
      R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1",)"
      R"("metadata":{"resourceVersion":"42","continue":"next"},"items":[)"
      R"({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"a",)"
      R"("namespace":"ml","resourceVersion":"40","labels":{"app":"triton","tier":"gpu"},)"
      R"("managedFields":[{"manager":"kube-controller-manager","fieldsV1":{"f:metadata":{)"
      R"("f:labels":{"f:app":{}}}}}],"ownerReferences":[{"kind":"ReplicaSet","name":"r"}]}}]})";
  const std::string full =
      R"({"kind":"PodList","apiVersion":"v1","metadata":{"continue":"next","resourceVersion":"42"},)"
      R"("items":[{"metadata":{"labels":{"tier":"gpu","app":"triton"},"name":"a","namespace":"ml"},)"
      R"("spec":{"containers":[{"name":"main","env":[{"name":"labels","value":"x"}]}]},)"
      R"("status":{"phase":"Running"}},{"metadata":{"namespace":"ml"}}]})";
  const auto a = decode_pod_list(metadata);
  const auto b = decode_pod_list(full);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->pods, b->pods);
  EXPECT_EQ(a->pods.at("ml").at("a"), (core::label_map{{"app", "triton"}, {"tier", "gpu"}}));
  EXPECT_EQ(a->continue_token, "next");
  EXPECT_EQ(b->resource_version, "42");
  EXPECT_FALSE(decode_pod_list(R"({"kind":"Status","code":500})"));
  EXPECT_FALSE(decode_pod_list(R"([1,2])"));
}

TEST(PodCacheDecode, WatchEventsInBothForms) {
  const auto metadata = decode_watch_event(
      R"({"type":"MODIFIED","object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",)"
      R"("metadata":{"name":"a","namespace":"ml","resourceVersion":"7","labels":{"app":"x"}}}})");
  ASSERT_TRUE(metadata && metadata->pod);
  EXPECT_EQ(metadata->type, "MODIFIED");
  EXPECT_EQ(metadata->resource_version, "7");
  EXPECT_EQ(metadata->pod->name, "a");
  EXPECT_EQ(metadata->pod->labels, (label_list{{"app", "x"}}));
  const auto error = decode_watch_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",)"
      R"x("message":"too old resource version: 5 (9)","reason":"Expired","code":410}})x");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 410);
  EXPECT_EQ(error->message, "too old resource version: 5 (9)");
  EXPECT_FALSE(error->pod);
  EXPECT_FALSE(decode_watch_event(R"({"type":"ADDED","object":{"metadata":{"name":"a")"));
}

// A continue token that outlived etcd's compaction (410 Expired on a later page): as
// client-go's pager, the list starts again in one answer, and only that answer's pods count.
TEST(PodCacheList, AnExpiredContinueTokenListsAgainWithoutPaging) {
  boost::asio::io_context ioc;
  using server = testing::scripted_server;
  const std::string page1 =
      R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":)"
      R"({"resourceVersion":"10","continue":"c1"},"items":[{"metadata":{"name":"gone",)"
      R"("namespace":"ml","labels":{"app":"triton"}}}]})";
  const std::string expired =
      R"x({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The )x"
      R"x(provided continue parameter is too old to display a consistent list result.",)x"
      R"x("reason":"Expired","code":410})x";
  const std::string whole =
      R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":)"
      R"({"resourceVersion":"20"},"items":[{"metadata":{"name":"b","namespace":"ml",)"
      R"("labels":{"app":"triton"}}},{"metadata":{"name":"a","namespace":"ml",)"
      R"("labels":{"app":"triton"}}}]})";
  server srv(
      ioc,
      {{{server::reply(200, page1)}, {server::reply(410, expired)}, {server::reply(200, whole)}},
       {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", server::then::hang}}});
  http_client::http_client client{ioc.get_executor(),
                                  http_client::options{*http_client::endpoint::parse(srv.url())}};
  ::prometheus::Registry registry;
  pod_cache cache{client, registry};
  boost::asio::co_spawn(ioc, cache.async_run(), boost::asio::detached);
  ioc.run_for(std::chrono::milliseconds(500));
  ASSERT_EQ(srv.received(0).size(), 3u);
  EXPECT_EQ(srv.received(0)[0].target(), "/api/v1/pods?limit=500&resourceVersion=0");
  EXPECT_EQ(srv.received(0)[1].target(), "/api/v1/pods?limit=500&continue=c1");
  EXPECT_EQ(srv.received(0)[2].target(), "/api/v1/pods?resourceVersion=0");
  EXPECT_EQ(*cache.list_pod_names("ml", {}), (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(srv.accepted(), 2u);
  EXPECT_NE(srv.received(1)[0].target().find("resourceVersion=20"), std::string::npos);
}

TEST_F(PodCacheTest, ErrorEventAsksForARelist) {
  EXPECT_FALSE(cache.apply_event(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version","reason":"Expired","code":410}})"));
}

}  // namespace
}  // namespace gma::adapters::kubernetes
