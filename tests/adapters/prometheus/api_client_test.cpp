// api_client over a fake transport (tests/support/fake_transport.hpp): the requests it builds,
// how it decodes Prometheus' answers, how it classifies failures (backends.md "Prometheus
// error types") and what health() reports. One test runs it over a real http_client and a
// loopback server, to see the request on the wire.
#include "adapters/prometheus/api_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cmath>

#include "tests/support/fake_transport.hpp"
#include "tests/support/loopback_http.hpp"
#include "tests/support/run_awaitable.hpp"
#include "tests/support/series_oracle.hpp"

namespace gma::adapters::prometheus {
namespace {

using namespace std::chrono_literals;
using testing::fake_transport;
using testing::run_awaitable;
using testing::sent_request;
namespace bhttp = boost::beast::http;

constexpr auto kSuccessVector = R"({"status":"success","data":{"resultType":"vector","result":[
  {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","pod":"p1","gpu":"0","weird":7},
   "value":[1700000000.781,"87.5"]},
  {"metric":{"pod":"p2"},"value":[1700000001,"NaN"]},
  {"metric":{"pod":"p3"},"value":[1700000002,"+Inf"]},
  {"metric":{"pod":"p4"},"value":[1700000003,"-Inf"]}]}})";

/// An api_client over a fake transport, with what a test needs to drive it.
struct fixture {
  explicit fixture(request_verb verb = request_verb::get)
      : api(transport, verb, std::chrono::milliseconds(5000), registry) {}

  result<std::vector<sample>> query(const std::string& promql) {
    return run_awaitable(ioc, api.async_query(promql, "test:1", reply_bytes));
  }
  result<series_summary> series(std::vector<std::string> matches,
                                std::chrono::system_clock::time_point start,
                                series_limits limits = {}) {
    return run_awaitable(
        ioc, api.async_series(std::move(matches), start, limits, "test:2", series_failure));
  }

  boost::asio::io_context ioc;
  fake_transport transport;
  ::prometheus::Registry registry;
  api_client api;
  std::size_t reply_bytes = 0;
  std::optional<reply_failure> series_failure;
};

TEST(ApiClientRequest, QueryIsAGetWithEncodedQueryAndTimeout) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(f.query(R"(sum(rate(x{a="b c"}[2m])))").has_value());
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, bhttp::verb::get);
  EXPECT_EQ(sent[0].target,
            "/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B2m%5D%29%29"
            "&timeout=5000ms");
  EXPECT_EQ(sent[0].body, "");
  EXPECT_EQ(sent[0].content_type, "");
  // Enforced locally too, with a margin for the answer to travel back.
  EXPECT_GT(sent[0].timeout, 5000ms);
  EXPECT_LE(sent[0].timeout, 6000ms);
}

// --prometheus-verb=POST: the same parameters as a form body (long queries, proxies that cap
// the URL).
TEST(ApiClientRequest, QueryAsPostSendsAFormBody) {
  fixture f(request_verb::post);
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(f.query("up == 1").has_value());
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].method, bhttp::verb::post);
  EXPECT_EQ(sent[0].target, "/api/v1/query");
  EXPECT_EQ(sent[0].body, "query=up%20%3D%3D%201&timeout=5000ms");
  EXPECT_EQ(sent[0].content_type, "application/x-www-form-urlencoded");
}

TEST(ApiClientRequest, SeriesSendsStartAndEveryMatch) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":[]})");
  const auto start = std::chrono::system_clock::time_point(1700000000250ms);
  ASSERT_TRUE(f.series({R"({__name__=~"DCGM_.*"})", "up"}, start).has_value());
  const auto sent = f.transport.requests();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].target,
            "/api/v1/series?start=1700000000.250&match%5B%5D=%7B__name__%3D~%22DCGM_.%2A%22%7D"
            "&match%5B%5D=up");
}

TEST(ApiClientDecode, VectorKeepsLabelsTimestampsAndNonFiniteValuesAsText) {
  fixture f;
  f.transport.reply(200, kSuccessVector);
  const auto samples = f.query("x");
  ASSERT_TRUE(samples.has_value()) << samples.error().message();
  ASSERT_EQ(samples->size(), 4u);
  const auto& first = (*samples)[0];
  EXPECT_EQ(first.labels, (core::label_map{{"__name__", "DCGM_FI_DEV_GPU_UTIL"},
                                           {"pod", "p1"},
                                           {"gpu", "0"}}));  // the number label is left out
  EXPECT_DOUBLE_EQ(first.timestamp, 1700000000.781);
  EXPECT_EQ(first.value, "87.5");
  EXPECT_EQ((*samples)[1].value, "NaN");
  EXPECT_EQ((*samples)[2].value, "+Inf");
  EXPECT_EQ((*samples)[3].value, "-Inf");
  EXPECT_EQ(f.reply_bytes, std::string(kSuccessVector).size());
}

TEST(ApiClientDecode, ScalarIsOneSampleWithoutLabels) {
  fixture f;
  f.transport.reply(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}})");
  const auto samples = f.query("1+1");
  ASSERT_TRUE(samples.has_value()) << samples.error().message();
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_TRUE((*samples)[0].labels.empty());
  EXPECT_EQ((*samples)[0].value, "2");
}

// A body that is Prometheus' success envelope but not what a query answers is backend_error:
// a range vector, a string, a sample of the wrong JSON types, a missing or mistyped field.
TEST(ApiClientDecode, UnusableSuccessfulAnswersAreBackendErrors) {
  const char* bodies[] = {
      R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}})",
      R"({"status":"success","data":{"resultType":"string","result":[1,"x"]}})",
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}})",
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["1","2"]}]}})",
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}})",
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})",
      R"({"status":"success","data":{"resultType":"vector","result":{}}})",
      R"({"status":"success","data":{"resultType":"scalar","result":"2"}})",
      R"({"status":"success","data":[]})",
      R"({"status":"success"})",
      R"({"status":"success","data":{"resultType":"vector"}})",
      R"([{"status":"success"}])",
      "not json at all",
  };
  for (const char* body : bodies) {
    SCOPED_TRACE(body);
    fixture f;
    f.transport.reply(200, body);
    const auto samples = f.query("x");
    ASSERT_FALSE(samples.has_value());
    EXPECT_EQ(samples.error(), errc::backend_error);
  }
}

TEST(ApiClientDecode, SeriesAreReducedToTheirShapes) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":[
    {"__name__":"DCGM_FI_DEV_GPU_UTIL","namespace":"ml","pod":"p1"},
    {"__name__":"DCGM_FI_DEV_GPU_UTIL","pod":"p2","namespace":"ml"},
    {"job":"no name"},
    {"__name__":"up","job":"dcgm","bad":null}]})");
  const auto series = f.series({"x"}, std::chrono::system_clock::now());
  ASSERT_TRUE(series.has_value()) << series.error().message();
  EXPECT_EQ(series->series, 4u);
  EXPECT_GT(series->bytes, 100u);
  EXPECT_EQ(series->shapes, (std::set<series_shape>{{"DCGM_FI_DEV_GPU_UTIL", {"namespace", "pod"}},
                                                    {"up", {"job"}}}));
}

TEST(ApiClientDecode, SeriesThatAreNotAListAreABackendError) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  const auto series = f.series({"x"}, std::chrono::system_clock::now());
  ASSERT_FALSE(series.has_value());
  EXPECT_EQ(series.error(), errc::backend_error);
  ASSERT_TRUE(f.series_failure.has_value());
  EXPECT_EQ(f.series_failure->detail, "data is not a list of series");
}

/// A series answer of `count` dcgm-exporter-like series over `gpus_per_node` GPUs a node.
std::string series_answer(std::size_t count) {
  std::string body = R"({"status":"success","data":[)";
  for (std::size_t i = 0; i < count; ++i) {
    if (i) body += ",";
    body +=
        R"({"__name__":"DCGM_FI_DEV_GPU_UTIL","DCGM_FI_DRIVER_VERSION":"550.54.15",)"
        R"("Hostname":"gpu-node-)" +
        std::to_string(i / 8) + R"(","UUID":"GPU-)" + std::to_string(1000000 + i) +
        R"(","container":"triton","device":"nvidia)" + std::to_string(i % 8) + R"(","gpu":")" +
        std::to_string(i % 8) +
        R"(","instance":"10.0.0.1:9400","job":"dcgm-exporter","modelName":"NVIDIA H100 80GB HBM3",)"
        R"("namespace":"ml-)" +
        std::to_string(i % 50) + R"(","pod":"triton-)" + std::to_string(i) + R"("})";
  }
  return body + "]}";
}

TEST(ApiClientDecode, SeriesLargerThanTheOldBodyCapAreReadAsTheyArrive) {
  // Over 64 MiB, the cap of a whole-body read: the answer is read piece by piece into one
  // shape.
  fixture f;
  const std::string body = series_answer(300000);
  ASSERT_GT(body.size(), 64u << 20);
  f.transport.reply(200, body);
  f.transport.set_piece_size(16384);
  const auto series = f.series({"x"}, std::chrono::system_clock::now());
  ASSERT_TRUE(series.has_value()) << series.error().message();
  EXPECT_EQ(series->series, 300000u);
  EXPECT_EQ(series->bytes, body.size());
  ASSERT_EQ(series->shapes.size(), 1u);
  EXPECT_EQ(series->shapes.begin()->second.size(), 11u);
}

TEST(ApiClientDecode, SeriesOverTheConfiguredBoundsFailSayingWhichFlag) {
  fixture f;
  f.transport.reply(200, series_answer(1000));
  series_limits limits;
  limits.max_reply_bytes = 10000;
  ASSERT_FALSE(f.series({"x"}, std::chrono::system_clock::now(), limits).has_value());
  ASSERT_TRUE(f.series_failure.has_value());
  EXPECT_STREQ(f.series_failure->reason, "limit");
  EXPECT_NE(f.series_failure->detail.find("larger than 10000 bytes"), std::string::npos);
  EXPECT_NE(f.series_failure->detail.find("--discovery-max-reply-bytes"), std::string::npos);

  f.transport.reply(200, R"({"status":"success","data":[{"__name__":"a","x":"1"},)"
                         R"({"__name__":"b","x":"1"},{"__name__":"a","x":"2"},{"__name__":"c"}]})");
  limits = {};
  limits.max_shapes = 2;
  ASSERT_FALSE(f.series({"x"}, std::chrono::system_clock::now(), limits).has_value());
  EXPECT_STREQ(f.series_failure->reason, "limit");
  EXPECT_NE(f.series_failure->detail.find("more than 2 distinct series shapes"), std::string::npos);
  EXPECT_NE(f.series_failure->detail.find("--discovery-max-series-shapes"), std::string::npos);
}

TEST(ApiClientDecode, StreamingSeriesReaderAgreesWithTheDocumentReading) {
  // The same answers through the old document-based reduction and the streaming reader, fed
  // in pieces of every size from 1 byte: the same shapes.
  const std::vector<std::string> answers = {
      series_answer(50),
      R"({"data":[{"__name__":"a","b":"1","c":"2"},{"c":"x","__name__":"a","b":"y"}],"status":"success"})",
      R"({"status":"success","data":[{"__name__":"esc\"aped\\","l\u00e9":"\ud83d\ude00"},{"__name__":"n","x":5,"y":"s"}],"warnings":["w"]})",
      R"({"status":"success","data":[{"__name__":"dup","k":"1","k":2},{"__name__":"z","nested":{"a":"b"}},7,"s",[]]})",
      R"({"status":"success","data":[]})"};
  for (const auto& body : answers) {
    const auto expected = testing::series_shapes_by_document(body);
    ASSERT_TRUE(expected.has_value()) << body;
    for (std::size_t piece : {1, 2, 3, 7, 64, 100000}) {
      const auto streamed = testing::series_shapes_by_stream(body, piece);
      ASSERT_TRUE(streamed.has_value()) << body << " in pieces of " << piece;
      EXPECT_EQ(*streamed, *expected) << body << " in pieces of " << piece;
    }
  }
}

TEST(ApiClientDecode, SeriesAnswersThatAreNotJsonOrCutShortFail) {
  for (const char* body :
       {R"({"status":"success","data":[{"__name__":"a"})", R"(<html>502 Bad Gateway</html>)",
        R"({"status":"success","data":[]} x)"}) {
    EXPECT_FALSE(testing::series_shapes_by_stream(body, 5).has_value()) << body;
  }
}

struct failure_case {
  const char* what;
  unsigned status;
  const char* body;
  errc expected;
};

// An outage (503 to the HPA) versus Prometheus judging the query or refusing us (500), from
// the HTTP status and Prometheus' errorType (backends.md section 1), plus the answers of
// VictoriaMetrics (errorType is the status), Mimir and the proxies in front of them.
TEST(ApiClientErrors, StatusAndErrorTypeDecideTheCode) {
  const failure_case cases[] = {
      {"bad_data", 400, R"({"status":"error","errorType":"bad_data","error":"invalid parameter"})",
       errc::backend_error},
      {"execution", 422, R"({"status":"error","errorType":"execution","error":"too many samples"})",
       errc::backend_error},
      {"timeout", 503, R"({"status":"error","errorType":"timeout","error":"query timed out"})",
       errc::backend_unavailable},
      {"internal", 500, R"({"status":"error","errorType":"internal","error":"storage"})",
       errc::backend_unavailable},
      {"unavailable", 500, R"({"status":"error","errorType":"unavailable","error":"not ready"})",
       errc::backend_unavailable},
      {"not_found", 404, R"({"status":"error","errorType":"not_found","error":"nope"})",
       errc::backend_error},
      {"not_acceptable", 406, R"({"status":"error","errorType":"not_acceptable","error":"x"})",
       errc::backend_error},
      {"VictoriaMetrics 422", 422, R"({"status":"error","errorType":"422","error":"cannot parse"})",
       errc::backend_error},
      {"VictoriaMetrics 503", 503, R"({"status":"error","errorType":"503","error":"partial"})",
       errc::backend_unavailable},
      {"Mimir without a tenant", 401, "no org id", errc::backend_error},
      {"forbidden by a proxy", 403, R"({"status":"error","errorType":"forbidden","error":"no"})",
       errc::backend_error},
      {"proxy 502 page", 502, "<html>Bad Gateway</html>", errc::backend_unavailable},
      {"proxy 503 page", 503, "<html>Service Temporarily Unavailable</html>",
       errc::backend_unavailable},
      {"proxy 504 JSON", 504, R"({"message":"Endpoint request timed out"})",
       errc::backend_unavailable},
      {"error envelope with 200", 200, R"({"status":"error","errorType":"execution","error":"x"})",
       errc::backend_error},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    fixture f;
    f.transport.reply(c.status, c.body);
    const auto samples = f.query("x");
    ASSERT_FALSE(samples.has_value());
    EXPECT_EQ(samples.error(), c.expected) << samples.error().message();
  }
}

// Thanos' partial answers (and PromQL annotations) come as 200 with "warnings": the answer
// is served, and the warnings reach the caller (rules_provider logs and counts them).
TEST(ApiClientWarnings, AnswerWithWarningsIsServedAndTheWarningsReturned) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","warnings":["No StoreAPIs matched for this query",
    "store 10.0.0.7:10901 unavailable"],"data":{"resultType":"vector","result":[
    {"metric":{"pod":"p1"},"value":[1700000000,"1"]}]}})");
  std::vector<std::string> warnings;
  const auto samples =
      run_awaitable(f.ioc, f.api.async_query("x", "test:1", f.reply_bytes, nullptr, &warnings));
  ASSERT_TRUE(samples.has_value()) << samples.error().message();
  EXPECT_EQ(samples->size(), 1u);
  const std::vector<std::string> expected = {"No StoreAPIs matched for this query",
                                             "store 10.0.0.7:10901 unavailable"};
  EXPECT_EQ(warnings, expected);
  // None, and nothing but strings directly in a top-level "warnings" list.
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[],
    "warnings":["not the envelope's"]}})");
  ASSERT_TRUE(
      run_awaitable(f.ioc, f.api.async_query("x", "test:1", f.reply_bytes, nullptr, &warnings)));
  EXPECT_TRUE(warnings.empty());
}

// Thanos' partial_response (--prometheus-partial-response) on queries and series: true,
// false, or (unset) nothing.
TEST(ApiClientRequest, PartialResponseIsSentAsConfigured) {
  const std::pair<std::optional<bool>, std::string> cases[] = {
      {std::nullopt, ""}, {false, "&partial_response=false"}, {true, "&partial_response=true"}};
  for (const auto& [partial, suffix] : cases) {
    SCOPED_TRACE(suffix);
    boost::asio::io_context ioc;
    fake_transport transport;
    ::prometheus::Registry registry;
    api_client api(transport, request_verb::get, std::chrono::milliseconds(5000), registry,
                   backend_parameters{partial});
    transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
    std::size_t bytes = 0;
    ASSERT_TRUE(run_awaitable(ioc, api.async_query("up", "test:1", bytes)).has_value());
    transport.reply(200, R"({"status":"success","data":[]})");
    std::optional<reply_failure> failure;
    ASSERT_TRUE(run_awaitable(ioc, api.async_series({"up"}, std::chrono::system_clock::time_point{},
                                                    {}, "test:2", failure))
                    .has_value());
    const auto sent = transport.requests();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0].target, "/api/v1/query?query=up&timeout=5000ms" + suffix);
    EXPECT_EQ(sent[1].target, "/api/v1/series?start=0.000" + suffix + "&match%5B%5D=up");
  }
}

// Google Cloud Managed Service for Prometheus refuses parameters it does not know (400
// INVALID_ARGUMENT, pyrra-dev/pyrra#1063): the request goes again without partial_response, and
// so does every later one, with one log line. A 400 that does not name it changes nothing.
TEST(ApiClientRequest, ABackendRefusingPartialResponseIsSentItNoMore) {
  boost::asio::io_context ioc;
  fake_transport transport;
  ::prometheus::Registry registry;
  api_client api(transport, request_verb::get, std::chrono::milliseconds(5000), registry,
                 backend_parameters{false});
  std::size_t bytes = 0;
  std::optional<reply_failure> failure;
  const auto series = [&] {
    return run_awaitable(ioc, api.async_series({"up"}, std::chrono::system_clock::time_point{}, {},
                                               "test:2", failure));
  };
  // A refusal of the query itself (bad_data) keeps the parameter.
  transport.reply(400, R"({"status":"error","errorType":"bad_data","error":"parse error"})");
  ASSERT_FALSE(run_awaitable(ioc, api.async_query("up{", "test:1", bytes)).has_value());
  transport.answer_with([](const sent_request& r) -> result<fake_transport::response> {
    if (r.target.find("partial_response") != std::string::npos)
      return fake_transport::response{400, "application/json", R"({
  "error": {
    "code": 400,
    "message": "Invalid JSON payload received. Unknown name \"partial_response\": Cannot bind query parameter. Field 'partial_response' could not be found in request message.",
    "status": "INVALID_ARGUMENT"
  }
})"};
    if (r.target.starts_with("/api/v1/series"))
      return fake_transport::response{200, "application/json",
                                      R"({"status":"success","data":[{"__name__":"up"}]})"};
    return fake_transport::response{200, "application/json", kSuccessVector};
  });
  ::testing::internal::CaptureStderr();
  const auto first = series();
  const auto query = run_awaitable(ioc, api.async_query("up", "test:1", bytes));
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(first->series, 1u);
  ASSERT_TRUE(query.has_value()) << query.error().message();
  EXPECT_EQ(query->size(), 4u);  // kSuccessVector's samples
  const auto sent = transport.requests();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].target, "/api/v1/query?query=up%7B&timeout=5000ms&partial_response=false");
  EXPECT_EQ(sent[1].target, "/api/v1/series?start=0.000&partial_response=false&match%5B%5D=up");
  EXPECT_EQ(sent[2].target, "/api/v1/series?start=0.000&match%5B%5D=up");
  EXPECT_EQ(sent[3].target, "/api/v1/query?query=up&timeout=5000ms");
  EXPECT_NE(log.find("Prometheus at http://prometheus.test:9090 refuses the partial_response "
                     "parameter (HTTP 400: {"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("it is sent no more"), log.rfind("it is sent no more")) << log;  // once
  EXPECT_EQ(log.find("was refused by the backend"), std::string::npos) << log;
}

// The transport's own failures: unreachable or past the deadline is an outage, a malformed
// exchange is an error.
TEST(ApiClientErrors, TransportFailures) {
  fixture f;
  f.transport.fail(errc::backend_unavailable);
  auto samples = f.query("x");
  ASSERT_FALSE(samples.has_value());
  EXPECT_EQ(samples.error(), errc::backend_unavailable);
  f.transport.fail(errc::protocol_error);
  samples = f.query("x");
  ASSERT_FALSE(samples.has_value());
  EXPECT_EQ(samples.error(), errc::backend_error);
}

TEST(ApiClientHealth, NotReadyUntilAnAnswer) {
  fixture f;
  const auto before = f.api.health(1h);
  EXPECT_EQ(before.name, "prometheus");
  EXPECT_FALSE(before.ok);
  EXPECT_NE(before.reason.find("prometheus.test:9090 has not answered recently"), std::string::npos)
      << before.reason;
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(f.query("x").has_value());
  EXPECT_TRUE(f.api.health(1h).ok);
  // The window is how recent the last usable answer must be.
  EXPECT_FALSE(f.api.health(0s).ok);
}

// Prometheus rejecting the query itself (400, 422) still shows it up and accepting us.
TEST(ApiClientHealth, AVerdictOnTheQueryCountsAsAnswered) {
  fixture f;
  f.transport.reply(422, R"({"status":"error","errorType":"execution","error":"x"})");
  ASSERT_FALSE(f.query("x").has_value());
  EXPECT_TRUE(f.api.health(1h).ok);
}

// An answer read whole that we cannot use (a result type we do not serve, a series answer
// over a discovery bound) is a configuration problem, not Prometheus being down.
TEST(ApiClientHealth, AnUnusableAnswerCountsAsAnswered) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
  ASSERT_FALSE(f.query("x").has_value());
  EXPECT_TRUE(f.api.health(1h).ok);
  fixture g;
  g.transport.reply(200, R"({"status":"success","data":[{"__name__":"a"},{"__name__":"b"}]})");
  series_limits limits;
  limits.max_shapes = 1;
  ASSERT_FALSE(g.series({"x"}, std::chrono::system_clock::now(), limits).has_value());
  EXPECT_TRUE(g.api.health(1h).ok);
  fixture h;
  h.transport.reply(200, "<html>a proxy's page</html>");
  ASSERT_FALSE(h.query("x").has_value());
  EXPECT_FALSE(h.api.health(1h).ok);
}

// A refusal of our credentials makes it unready until an answer succeeds; a timeout in
// between says nothing about the credentials and does not clear it.
TEST(ApiClientHealth, RefusedCredentialsStandUntilASuccess) {
  fixture f;
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(f.query("x").has_value());
  f.transport.reply(403, R"({"status":"error","errorType":"forbidden","error":"tenant gpu"})");
  ASSERT_FALSE(f.query("x").has_value());
  auto health = f.api.health(1h);
  EXPECT_FALSE(health.ok);
  EXPECT_NE(
      health.reason.find("refused our credentials: HTTP 403, errorType forbidden: tenant gpu"),
      std::string::npos)
      << health.reason;
  f.transport.fail(errc::backend_unavailable);
  ASSERT_FALSE(f.query("x").has_value());
  EXPECT_FALSE(f.api.health(1h).ok);
  f.transport.reply(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(f.query("x").has_value());
  EXPECT_TRUE(f.api.health(1h).ok);
}

TEST(ApiClientHealth, ReasonNamesTheLastFailure) {
  fixture f;
  f.transport.reply(502, "<html>Bad Gateway</html>");
  ASSERT_FALSE(f.query("x").has_value());
  const auto health = f.api.health(1h);
  EXPECT_FALSE(health.ok);
  EXPECT_NE(health.reason.find("(last error: HTTP 502, not JSON: <html>Bad Gateway</html>)"),
            std::string::npos)
      << health.reason;
}

// The whole path once, over the real http_client: the base path of --prometheus-url comes
// first, and the reply is decoded.
TEST(ApiClientOverHttp, QueryOnTheWire) {
  boost::asio::io_context ioc;
  testing::scripted_server srv(
      ioc, {{{testing::scripted_server::reply(
               200, R"({"status":"success","data":{"resultType":"vector","result":[
                     {"metric":{"pod":"p1"},"value":[1700000000,"1"]}]}})")}}});
  http_client::options opts;
  opts.target = *http_client::endpoint::parse(srv.url("/prom"));
  http_client::http_client http(ioc.get_executor(), opts);
  ::prometheus::Registry registry;
  api_client api(http, request_verb::get, std::chrono::milliseconds(2000), registry);
  std::size_t bytes = 0;
  const auto samples = run_awaitable(ioc, api.async_query("up", "test:1", bytes));
  ASSERT_TRUE(samples.has_value()) << samples.error().message();
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].labels.at("pod"), "p1");
  ASSERT_EQ(srv.received(0).size(), 1u);
  EXPECT_EQ(srv.received(0)[0].target(), "/prom/api/v1/query?query=up&timeout=2000ms");
}

// Mimir's tenant: --prometheus-header=X-Scope-OrgID=<tenant> reaches the backend on every
// request (a Mimir without it answers 401 "no org id", backends.md section 4).
TEST(ApiClientOverHttp, ConfiguredHeadersCarryMimirsTenant) {
  boost::asio::io_context ioc;
  testing::scripted_server srv(
      ioc, {{{testing::scripted_server::reply(
               200, R"({"status":"success","data":{"resultType":"vector","result":[]}})")}}});
  http_client::options opts;
  opts.target = *http_client::endpoint::parse(srv.url("/prometheus"));
  opts.headers = {{"X-Scope-OrgID", "tenant-a|tenant-b"}};
  http_client::http_client http(ioc.get_executor(), opts);
  ::prometheus::Registry registry;
  api_client api(http, request_verb::get, std::chrono::milliseconds(2000), registry);
  std::size_t bytes = 0;
  ASSERT_TRUE(run_awaitable(ioc, api.async_query("up", "test:1", bytes)).has_value());
  ASSERT_EQ(srv.received(0).size(), 1u);
  EXPECT_EQ(srv.received(0)[0].target(), "/prometheus/api/v1/query?query=up&timeout=2000ms");
  EXPECT_EQ(srv.received(0)[0]["X-Scope-OrgID"], "tenant-a|tenant-b");
}

}  // namespace
}  // namespace gma::adapters::prometheus
